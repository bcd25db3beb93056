"""Reading runs back from their local files: the W&B run's history (via `wandb leet inspect`) and the run folder."""

import json
import shutil
import subprocess
import sys
from pathlib import Path


def wandb_run_dirs(save_dir: Path, run_id: str) -> list[Path]:
    """The W&B run folders of `run_id` under `<save_dir>/wandb` (offline or synced), oldest first: one per start of
    the run (a resumed run writes a new one); `save_dir` is the logger's save_dir (`runs`), which also holds the run
    folders `<save_dir>/<project>/<run id>`."""
    return sorted((Path(save_dir) / "wandb").glob(f"*run-*-{run_id}"))  # the names start with the start time


def run_history(save_dir: Path, run_id: str) -> list[dict]:
    """Every row run `run_id` logged, over all its starts (resumes), in order."""
    return [row for folder in wandb_run_dirs(save_dir, run_id) for row in wandb_history(folder)]


def last_logged_steps(rows: list[dict]) -> dict[str, int]:
    """The last `trainer/global_step` each key was logged at in the history `rows` (W&B's own `_` keys left out)."""
    last: dict[str, int] = {}
    for row in rows:
        if "trainer/global_step" not in row:
            continue
        step = int(row["trainer/global_step"])
        for key in row:
            if not key.startswith("_") and key != "trainer/global_step":
                last[key] = max(step, last.get(key, step))
    return last


def wandb_history(run_dir: Path) -> list[dict]:
    """Every row the run logged (`wandb.log` calls), read from its .wandb file; works while the run is writing."""
    wandb = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    if wandb is None:
        raise RuntimeError("the wandb command is not installed; pip install wandb")
    proc = subprocess.run([wandb, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True)
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("{") and '"history"' in line:
            record = json.loads(line)
            if record.get("type") == "history":
                rows.append(record["history"]["item"])
    return rows


def metric_curve(rows: list[dict], metric: str) -> list[tuple[int, float]]:
    """(step, value) of `metric` in the history rows, in logging order."""
    return [(int(r.get("trainer/global_step", r.get("_step", 0))), float(r[metric])) for r in rows if metric in r]
