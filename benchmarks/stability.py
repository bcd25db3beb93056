"""Stability of a training recipe: the same `python -m lit_gan fit --config CONFIG` over several seeds and torch
thread counts, judged run by run instead of on one lucky (or unlucky) run.

Each (seed, threads) pair is one `fit --seed_everything SEED` in its own empty working directory, as in
quickstart.py: W&B offline, and one `LIT_GAN_CACHE` folder shared by the runs of this invocation (the real images'
Inception features are encoded once). The torch thread count is fixed by `OMP_NUM_THREADS`/`MKL_NUM_THREADS` and by
`torch.set_num_threads` in the wrapper that starts lit_gan (`RUN_WITH_THREADS`), which also records the count still in
force when the process exits. Reported per run: its wall time (the whole command: start-up, data, training, sample
grids, FID/KID, W&B), every evaluation (every `val/fid*` and `val/kid*` key of the W&B history), the first, best and
final FID and KID (`val/fid`; `val/kid_mean_AtoB`, else `val/kid_mean`), final/best of each, and whether the run
"meets the line": final FID < first FID and final KID <= 1.15 x best KID. The last sample grid of each run (highest
step, first direction) is kept, and all of them are put side by side in one image, labelled with seed, threads and
final KID. With `--parallel N`, N runs share the machine at a time: the numbers do not change (fixed threads), the wall
times are then not solo timings. Arguments after `--` are passed to the CLI. A failed run is recorded (exit code, end
of its log) and the others go on; the script then exits with code 1.

    python benchmarks/stability.py --config configs/quickstart.yaml --seeds 0 1 2 --threads 1 2 \\
        [--name NAME] [--parallel N] [--report-only] [-- CLI ARGS]
    # a style from 25 images: trained on a dataset subset, with the colours of each run's translations measured
    python benchmarks/stability.py --config configs/personal_style_laptop.yaml --seeds 0 1 2 --threads 2 \\
        --dataset ../shared/datasets/summer2winter_yosemite --train-b 25 \\
        --color ../shared/datasets/summer2winter_yosemite/testA ../shared/datasets/summer2winter_yosemite/testB

`--dataset ROOT --train-b N` trains on a folder of links to ROOT's trainA, testA, testB and its first N trainB images
(`--data.root`); `--color SOURCE STYLE` adds the colour statistics of each run's last checkpoint (color_stats.py: the
per-channel mean and spread of its translations of SOURCE images, and their distance to the STYLE images' colours,
beside the untranslated photos' own distance).

Outputs (NAME: the config's stem unless `--name`): benchmarks/results/stability/NAME.json (config, overrides, machine,
versions, every run), NAME.md (the table, also printed), NAME.png (the last grids side by side) and NAME/seed<S>_
threads<T>.png (each run's last grid; `--report-only` rebuilds NAME.md and NAME.png from these and the JSON).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from color_stats import color_report  # this folder
from PIL import Image, ImageDraw
from quickstart import machine, read_evaluations

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stability"
THREADS_FILE_ENV = "STABILITY_THREADS_FILE"
# `python -m lit_gan ...` with torch's intra-op threads set to $OMP_NUM_THREADS, writing the count in force at exit.
RUN_WITH_THREADS = f"""
import atexit, os, runpy, torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
atexit.register(lambda: open(os.environ["{THREADS_FILE_ENV}"], "w").write(str(torch.get_num_threads())))
runpy.run_module("lit_gan", run_name="__main__", alter_sys=True)
"""
KID_KEYS = ("val/kid_mean_AtoB", "val/kid_mean")  # the first one present is judged
FID_KEY = "val/fid"
KID_TOLERANCE = 1.15  # the line: final KID <= 1.15 x best KID


def run_one(
    config: Path, seed: int, threads: int, overrides: list[str], work: Path, cache: Path, color: dict | None = None
) -> dict:
    """One `fit` in `work` with `threads` torch threads: wall time, threads used, evaluations, last grid; with
    `color` ({"source", "style", "size", "images"}), the colour statistics of its last checkpoint (color_stats.py)."""
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(work),
        "LIT_GAN_CACHE": str(cache),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        THREADS_FILE_ENV: str(work / "threads_used"),
    }
    cli = ["fit", "--config", str(config), "--seed_everything", str(seed), *overrides]
    log = work / "output.log"
    with log.open("w") as out:
        start = time.perf_counter()
        code = subprocess.run([sys.executable, "-c", RUN_WITH_THREADS, *cli], cwd=work, env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode  # fmt: skip
        wall = time.perf_counter() - start
    threads_file = work / "threads_used"
    result = {
        "seed": seed,
        "threads": threads,
        "threads_used": int(threads_file.read_text()) if threads_file.exists() else None,
        "wall_s": wall,
        "exit_code": code,
        "command": " ".join(["python -m lit_gan", *cli]).replace(str(config), os.path.relpath(config, ROOT)),
    }
    if code != 0:
        return result | {"log_tail": log.read_text().splitlines()[-30:]}
    evaluations = [{k: v for k, v in row.items() if k == "trainer/global_step" or k.startswith(("val/fid", "val/kid"))}
                   for row in read_evaluations(work)]  # fmt: skip
    grid = last_grid(work)
    result |= judge(evaluations) | {"grid_in_run": str(grid.relative_to(work)) if grid else None, "_grid": grid}
    last = sorted(work.rglob("checkpoints/last.ckpt"))
    if color and last:
        result["color"] = color_report(last[-1], Path(color["source"]), Path(color["style"]), color["size"],
                                       color["images"])  # fmt: skip
    return result


def last_grid(work: Path) -> Path | None:
    """The sample grid of the highest step of the first direction (AtoB if there is one; StarGAN v2's reference-guided
    grid, "reference"): lit_gan's SampleGridCallback writes `<run folder>/samples/step_<step>_<direction>.png`."""
    grids = sorted(work.rglob("samples/step_*_*.png"), key=lambda path: path.name)  # steps zero-padded: in order
    directions = sorted({path.stem.split("_", 2)[2] for path in grids})
    if not directions:
        return None
    first = next((name for name in ("AtoB", "reference") if name in directions), directions[0])
    return [path for path in grids if path.stem.split("_", 2)[2] == first][-1]


def judge(evaluations: list[dict]) -> dict:
    """First, best, final and final/best of FID and KID, and whether the run meets the line."""
    kid_key = next((key for key in KID_KEYS if evaluations and key in evaluations[0]), None)
    result = {"evaluations": evaluations, "kid_key": kid_key, "fid": curve(evaluations, FID_KEY),
              "kid": curve(evaluations, kid_key)}  # fmt: skip
    fid, kid = result["fid"], result["kid"]
    if fid is None or kid is None:
        return result | {"fid_improved": False, "kid_near_best": False, "meets_line": False}
    fid_improved = fid["final"] < fid["first"]
    kid_near_best = kid["final"] <= kid["best"] + (KID_TOLERANCE - 1) * abs(kid["best"])  # KID can be < 0
    return result | {"fid_improved": fid_improved, "kid_near_best": kid_near_best,
                     "meets_line": fid_improved and kid_near_best}  # fmt: skip


def curve(evaluations: list[dict], key: str | None) -> dict | None:
    values = [row[key] for row in evaluations if key in row]
    if not values:
        return None
    first, best, final = values[0], min(values), values[-1]
    return {"first": first, "best": best, "final": final, "final_over_best": final / best if best > 0 else None}


def cpu_info() -> dict:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {"cpu_model": platform.processor() or platform.machine(), "avx512_bf16": None}
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return {"cpu_model": model, "avx512_bf16": "avx512_bf16" in flags}


def versions() -> str:
    import pytorch_lightning as pl
    import torch

    return f"python {platform.python_version()}, torch {torch.__version__}, pytorch-lightning {pl.__version__}"


def run_all(args: argparse.Namespace, overrides: list[str], out: Path) -> dict:
    """Every (seed, threads) run, up to `args.parallel` at a time; the JSON is rewritten after each run finishes."""
    config = args.config.resolve()
    report = {
        "config": os.path.relpath(config, ROOT),
        "overrides": overrides,
        "seeds": args.seeds,
        "threads": args.threads,
        "parallel": args.parallel,
        "solo_wall_times": args.parallel == 1,
        "machine": {"summary": machine(), **cpu_info()},
        "versions": versions(),
        "runs": [],
    }
    grids = out.with_suffix("")
    with tempfile.TemporaryDirectory(prefix="stability_") as tmp, ThreadPoolExecutor(args.parallel) as pool:
        cache = Path(tmp) / "cache"
        if args.dataset is not None:  # the first --train-b style images of a CycleGAN-layout dataset
            report["dataset"] = {"root": str(args.dataset), "train_b": args.train_b}
            overrides = [*overrides, "--data.root", str(subset(args.dataset, args.train_b, Path(tmp) / "dataset"))]
        color = None if args.color is None else {"source": str(args.color[0]), "style": str(args.color[1]),
                                                 "size": args.color_size, "images": args.color_images}  # fmt: skip
        report["color"] = color
        futures = [pool.submit(run_one, config, seed, threads, overrides, Path(tmp) / f"seed{seed}_threads{threads}",
                               cache, color) for seed in args.seeds for threads in args.threads]  # fmt: skip
        for future in as_completed(futures):
            run = future.result()
            grid = run.pop("_grid", None)
            if grid is not None:
                copy = grids / f"seed{run['seed']}_threads{run['threads']}.png"
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(grid, copy)
                run["grid"] = os.path.relpath(copy, ROOT)
            print(f"seed {run['seed']}, {run['threads']} threads: exit code {run['exit_code']}, "
                  f"{run['wall_s']:.0f} s", flush=True)  # fmt: skip
            report["runs"] = sorted([*report["runs"], run], key=lambda r: (r["seed"], r["threads"]))
            write_atomic(out, json.dumps(report, indent=2) + "\n")
    return report


def subset(root: Path, train_b: int | None, folder: Path) -> Path:
    """A dataset folder of links to `root`'s trainA, testA and testB, and to its first `train_b` trainB images (by
    name; all when None)."""
    from lit_gan.data.images import list_images

    for split in ("trainA", "testA", "testB"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / split).symlink_to((root / split).resolve())
    (folder / "trainB").mkdir()
    for path in list_images(root / "trainB")[:train_b]:
        (folder / "trainB" / path.name).symlink_to(path.resolve())
    return folder


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_row(run: dict) -> str:
    head = f"| {run['seed']} | {run['threads']} ({run['threads_used']} used) | {run['wall_s']:.0f} |"
    if run["exit_code"] != 0:
        return head + f" failed: exit code {run['exit_code']} | | | | | | | no |"
    fid, kid = run["fid"] or {}, run["kid"] or {}
    cells = [number(fid.get(k), 1) for k in ("first", "best", "final")]
    cells += [number(kid.get(k), 4) for k in ("first", "best", "final")]
    cells += [number(kid.get("final_over_best"), 2), "yes" if run["meets_line"] else "no"]
    return head + "".join(f" {cell} |" for cell in cells)


def spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def markdown(report: dict) -> str:
    """The table (a row per run) and the summary: median [range] over runs, and how many meet the line."""
    runs = report["runs"]
    done = [r for r in runs if r["exit_code"] == 0 and r["fid"] and r["kid"]]
    kid_key = next((r["kid_key"] for r in done), KID_KEYS[-1])
    concurrency = ("one run at a time" if report["parallel"] == 1 else
                   f"{report['parallel']} runs at a time, so wall times are not solo timings")  # fmt: skip
    machine_ = report["machine"]
    bf16 = "with" if machine_["avx512_bf16"] else "without"
    ratios = [r["kid"]["final_over_best"] for r in done if r["kid"]["final_over_best"] is not None]
    return "\n".join([
        f"# Stability: `{report['config']}` over seeds and torch thread counts\n",
        f"`python -m lit_gan fit --config {report['config']} --seed_everything SEED {' '.join(report['overrides'])}`"
        f", OMP_NUM_THREADS = torch threads; {concurrency}. FID: `{FID_KEY}`, KID: `{kid_key}`.\n",
        f"Machine: {machine_['cpu_model']} ({bf16} AVX512-BF16), {machine_['summary']}; {report['versions']}.\n",
        "| seed | threads | wall s | FID first | FID best | FID final | KID first | KID best | KID final "
        "| final/best KID | meets the line |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(table_row(run) for run in runs),
        "",
        f"Over {len(done)} finished runs, median [range]: final FID {spread([r['fid']['final'] for r in done], 1)}, "
        f"final KID {spread([r['kid']['final'] for r in done], 4)}, final/best KID {spread(ratios, 2)}. "
        f"{sum(r['meets_line'] for r in runs if r['exit_code'] == 0)}/{len(runs)} runs meet the line "
        f"(final FID < first, final KID <= {KID_TOLERANCE}x best).\n",
        *color_lines(report),
    ])  # fmt: skip


def color_lines(report: dict) -> list[str]:
    """With --color: per run, the colour distance (mean 1-D Wasserstein over RGB) of the last checkpoint's translations
    to the held-out style images, beside the photos' own, and each one's per-channel mean and std."""
    runs = [r for r in report["runs"] if r.get("color")]
    if not runs:
        return []
    c = report["color"]
    lines = [f"Colours: {c['images']} images of `{c['source']}` translated by each run's last checkpoint at "
             f"{c['size']} px, against as many of `{c['style']}` (color_stats.py; distance 0 = the style's palette).\n",
             "| seed | threads | distance, translations | distance, photos | closer | RGB mean (std), translations "
             "| RGB mean (std), style |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        t, p, s = (r["color"][k] for k in ("translations", "photos", "style"))
        rgb = lambda x: ", ".join(f"{m:.2f} ({d:.2f})" for m, d in zip(x["mean"], x["std"]))  # noqa: E731
        closer = "yes" if t["distance"] < p["distance"] else "no"
        lines.append(f"| {r['seed']} | {r['threads']} | {t['distance']:.4f} | {p['distance']:.4f} | {closer} | "
                     f"{rgb(t)} | {rgb(s)} |")  # fmt: skip
    return [*lines, ""]


def composite(report: dict, path: Path) -> None:
    """The last grid of every run side by side, each under a label: seed, threads, final KID."""
    columns = []
    for run in report["runs"]:
        if not run.get("grid") or not (ROOT / run["grid"]).exists():
            continue
        kid = number((run.get("kid") or {}).get("final"), 4)
        label = f"seed {run['seed']}, threads {run['threads']}\nfinal KID {kid}"
        columns.append((label, Image.open(ROOT / run["grid"]).convert("RGB")))
    if not columns:
        return
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_h = max(draw.multiline_textbbox((0, 0), label)[3] for label, _ in columns) + 8
    widths = [max(grid.width, draw.multiline_textbbox((0, 0), label)[2] + 8) for label, grid in columns]
    sheet = Image.new("RGB", (sum(widths) + 4 * len(columns), label_h + max(g.height for _, g in columns)), "white")
    x = 0
    for (label, grid), width in zip(columns, widths):
        ImageDraw.Draw(sheet).multiline_text((x + 4, 4), label, fill="black")
        sheet.paste(grid, (x, label_h))
        x += width + 4
    tmp = path.with_name(f".{path.name}.tmp")
    sheet.save(tmp, format="png")
    os.replace(tmp, path)


def main() -> None:
    argv = sys.argv[1:]
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--name", help="output name (default: the config's stem)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (wall times then not solo)")
    parser.add_argument("--report-only", action="store_true", help="the .md and .png again from NAME.json")
    parser.add_argument("--color", type=Path, nargs=2, metavar=("SOURCE", "STYLE"), help="also the colour statistics "
                        "of each run's last checkpoint: SOURCE images translated, against STYLE images")  # fmt: skip
    parser.add_argument("--color-size", type=int, default=128, help="--color: image size in px")
    parser.add_argument("--dataset", type=Path, help="train on this CycleGAN-layout folder (trainA/trainB/testA/testB; "
                        "passed as --data.root)")  # fmt: skip
    parser.add_argument("--train-b", type=int, help="--dataset: only its first N trainB (style) images")
    parser.add_argument("--color-images", type=int, default=50, help="--color: images per folder")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.parallel < 1 or min(args.threads) < 1:
        parser.error("--parallel and --threads need values >= 1")
    out = RESULTS / f"{args.name or args.config.stem}.json"
    if args.report_only:
        if not out.exists():
            raise SystemExit(f"--report-only: {out} not found; run without --report-only first (same --name)")
        report = json.loads(out.read_text())
    else:
        report = run_all(args, overrides, out)
    text = markdown(report)
    print(text)
    write_atomic(out.with_suffix(".md"), text + "\n")
    composite(report, out.with_suffix(".png"))
    failed = [run for run in report["runs"] if run["exit_code"] != 0]
    for run in failed:
        print(f"\nseed {run['seed']}, {run['threads']} threads failed:\n" + "\n".join(run["log_tail"]))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
