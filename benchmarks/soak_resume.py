"""Soak test of killing and resuming: N SIGKILLs at random moments of a real training run, each followed by the same
command with `--ckpt_path last`, as a preemptible job would be restarted; then the run is compared with the same run
left alone.

    python benchmarks/soak_resume.py --kills 20            # the CycleGAN quickstart, 2 epochs of 100 images

Reports (and writes to `--out`/soak.json): kills survived, steps lost (the uninterrupted run's final step minus the
killed run's: must be 0), the largest weight difference to the uninterrupted run (EMA included), checkpoint files that
failed to load (must be 0), W&B steps logged twice (must be 0), training steps in the W&B history (of the
uninterrupted run's), and the run's record against the uninterrupted run's: every (step, key, value) of the W&B
history and of the journal missing or in excess (must be none). A kill lands anywhere: in start-up, a training step,
validation, a sample grid or a checkpoint write. Exits with code 1 when any of these fails.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lit_gan.journal import JOURNAL_NAME, journal_values, read_journal  # noqa: E402
from lit_gan.models.loading import load_checkpoint  # noqa: E402
from lit_gan.sweep.history import history_differences, run_history  # noqa: E402

RUN = [  # the reproduction: checkpoints every 20 steps, which divides the epoch (100 images)
    "fit",
    f"--config={REPO / 'configs' / 'quickstart_cyclegan.yaml'}",
    "--trainer.max_epochs=2",
    "--data.synthetic.train_size=100",
    "--checkpoint.every_n_train_steps=20",
    "--metrics.enabled=false",
    "--trainer.enable_progress_bar=false",
    "--ckpt_path=last",
]


def start(folder: Path, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("WANDB_SERVICE", None)
    with open(folder / "log.txt", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "lit_gan", *RUN, *extra], cwd=folder, env=env, stdout=log, stderr=log
        )


def run_folder(folder: Path) -> Path:
    (run,) = [p for p in (folder / "runs" / "lit_gan").iterdir() if p.is_dir()]
    return run


def soak(folder: Path, kills: int, window: tuple[float, float], rng: random.Random, extra: list[str]) -> dict:
    """Start, kill after a random delay in `window` seconds, restart, `kills` times; then run to the end."""
    folder.mkdir(parents=True)
    starts, survived = 0, 0
    while True:
        proc = start(folder, extra)
        starts += 1
        if survived < kills:
            try:
                proc.wait(timeout=rng.uniform(*window))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                survived += 1
                print(f"  kill {survived}/{kills}", flush=True)
                continue
        else:
            proc.wait()
        if proc.returncode != 0:
            raise SystemExit(f"start {starts} failed (exit {proc.returncode}); see {folder / 'log.txt'}")
        if survived < kills:
            print(f"  the run ended after {survived} kills; a shorter --window fits {kills}", flush=True)
        return {"starts": starts, "kills": survived}


def compare(killed: Path, straight: Path) -> dict:
    final = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    expected = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    diff = max(
        (final["state_dict"][k].float() - v.float()).abs().max().item() for k, v in expected["state_dict"].items()
    )
    broken = []
    for path in sorted((killed / "checkpoints").glob("*.ckpt")):
        try:
            load_checkpoint(path)
        except Exception as error:  # noqa: BLE001 (reported, not raised)
            broken.append(f"{path.name}: {error}")
    rows = run_history(killed.parent.parent, killed.name)
    expected_rows = run_history(straight.parent.parent, straight.name)
    steps = Counter(int(r["trainer/global_step"]) for r in rows if "train/G_A" in r)
    expected_steps = {int(r["trainer/global_step"]) for r in expected_rows if "train/G_A" in r}
    record = history_differences(rows, expected_rows)
    journal, expected_journal = (
        journal_values(read_journal(run / "checkpoints" / JOURNAL_NAME)) for run in (killed, straight)
    )
    evaluations = {r["trainer/global_step"] for r in expected_rows if any(k.startswith("val/") for k in r)}
    return {
        "final_step": final["global_step"],
        "expected_step": expected["global_step"],
        "steps_lost": expected["global_step"] - final["global_step"],
        "max_weight_diff": diff,
        "checkpoints": len(list((killed / "checkpoints").glob("*.ckpt"))),
        "checkpoints_failed_to_load": broken,
        "wandb_steps_logged_twice": sorted(step for step, n in steps.items() if n > 1),
        "wandb_train_steps_logged": len(steps),
        "wandb_train_steps_expected": len(expected_steps),
        "wandb_evaluation_steps": len(evaluations),
        # every key at every step, against the uninterrupted run's history: (step, key, value) entries
        "wandb_history_missing": [list(map(str, entry)) for entry in record["missing"]],
        "wandb_history_extra": [list(map(str, entry)) for entry in record["extra"]],
        "journal_missing": [
            list(map(str, entry)) for entry in sorted((expected_journal - journal).elements(), key=str)
        ],
        "journal_extra": [list(map(str, entry)) for entry in sorted((journal - expected_journal).elements(), key=str)],
        "unfinished_writes_left": [str(p) for p in killed.rglob(".*.tmp")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs before the run may finish")
    parser.add_argument("--window", type=float, nargs=2, default=(6.0, 20.0), help="seconds after a start to kill")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--out", type=Path, default=Path("soak"), help="folder for both runs (emptied first)")
    parser.add_argument("extra", nargs="*", help="more CLI arguments for both runs, e.g. --trainer.max_epochs=3")
    args = parser.parse_args()
    if args.kills < 0 or not 0 < args.window[0] <= args.window[1]:
        parser.error("--kills must be >= 0 and --window two increasing positive numbers of seconds")
    shutil.rmtree(args.out, ignore_errors=True)
    began = time.time()
    print(f"uninterrupted run in {args.out / 'straight'}", flush=True)
    soak(args.out / "straight", 0, args.window, random.Random(args.seed), args.extra)
    print(f"killed run in {args.out / 'killed'}", flush=True)
    result = soak(args.out / "killed", args.kills, args.window, random.Random(args.seed), args.extra)
    result.update(compare(run_folder(args.out / "killed"), run_folder(args.out / "straight")))
    result.update(command=" ".join(["python", *sys.argv]), minutes=round((time.time() - began) / 60, 1))
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    record = ("wandb_history_missing", "wandb_history_extra", "journal_missing", "journal_extra")
    ok = not (result["steps_lost"] or result["checkpoints_failed_to_load"] or result["wandb_steps_logged_twice"])
    ok = ok and not any(result[key] for key in record)
    raise SystemExit(0 if ok and result["max_weight_diff"] < 1e-4 else 1)


if __name__ == "__main__":
    main()
