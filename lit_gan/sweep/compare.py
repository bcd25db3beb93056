"""`python -m lit_gan compare RUN_OR_SWEEP_FOLDER... [--out DIR] [--metrics KEY...]`: runs side by side, offline.

Reads each run's local files: `config.yaml` and `samples/` in its run folder (`runs/<project>/<run id>`) and the
metric history in its W&B run file (`runs/wandb/*-<run id>`). Writes, into `--out`:

- `curves.png`: each metric's curve for every run, on shared axes;
- `runs.md` and `runs.csv`: per run, the config values that differ between the runs, and each metric's best (the
  highest for SSIM, PSNR and the Inception Score, else the lowest) and final value;
- `samples.png`: each run's last sample grid, side by side, labelled with the run id;
- `dashboard.html`: all of it on one self-contained page (images and plots inline, no network request), the table
  sortable, with each run's last sample grids and its per-image translations at its best step (`lit_gan.sweep.html`).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

from lit_gan.metric_keys import FID, KID_MEAN, LPIPS, PSNR, SSIM, VAL, goal
from lit_gan.runs import atomic_write
from lit_gan.sweep.history import metric_curve, run_history
from lit_gan.sweep.html import write_page
from lit_gan.sweep.tables import best_and_final, cell, write_csv

DEFAULT_METRICS = [VAL + m for m in (FID, KID_MEAN, SSIM, PSNR, LPIPS)]
"""Compared unless --metrics names others; those no run logged are left out (e.g. PSNR without paired data)."""


class CompareError(ValueError):
    """Nothing to compare: a path that is no run or sweep folder, no finished run, or none of the metrics logged."""


@dataclass
class Run:
    run_id: str
    folder: Path  # runs/<project>/<run id>
    config: dict  # flattened: {"model.init_args.lr": 0.0002, ...}
    history: list[dict]


def find_runs(paths: list[Path]) -> list[Run]:
    """The runs named by `paths`: run folders, or sweep folders (runs/sweeps/<name>, all their trials)."""
    runs = []
    for path in map(Path, paths):
        if (path / "sweep.json").is_file():
            save_dir = path.parent.parent
            for trial in json.loads((path / "sweep.json").read_text())["trials"]:
                folders = [f for f in save_dir.glob(f"*/{trial['run_id']}") if (f / "config.yaml").is_file()]
                runs += [_run(folders[0], save_dir)] if folders else []
        elif (path / "config.yaml").is_file():
            runs.append(_run(path, path.parent.parent))
        else:
            raise CompareError(f"{path} is neither a run folder (with config.yaml) nor a sweep folder (sweep.json)")
    if not runs:
        raise CompareError(f"no finished runs found in {', '.join(map(str, paths))}")
    return runs


def _run(folder: Path, save_dir: Path) -> Run:
    history = run_history(save_dir, folder.name)
    return Run(folder.name, folder, flatten(yaml.safe_load((folder / "config.yaml").read_text())), history)


def flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flatten(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def differences(runs: list[Run]) -> list[str]:
    """Config keys whose values are not the same in every run."""
    keys = sorted({k for run in runs for k in run.config})
    return [k for k in keys if len({json.dumps(run.config.get(k), sort_keys=True) for run in runs}) > 1]


def table(runs: list[Run], metrics: list[str]) -> list[dict]:
    keys = differences(runs)
    rows = []
    for run in runs:
        row = {"run": run.run_id, **{k.replace(".init_args", ""): run.config.get(k) for k in keys}}
        for metric in metrics:
            row |= best_and_final(metric, [v for _, v in metric_curve(run.history, metric)], goal(metric))
        rows.append(row)
    return rows


def write_curves(runs: list[Run], metrics: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for color, run in enumerate(runs):  # a run keeps its colour in every panel (the legend is in the first)
            curve = metric_curve(run.history, metric)
            if curve:
                ax.plot(*zip(*curve), marker="o", markersize=3, label=run.run_id, color=f"C{color % 10}")
        ax.set(title=metric, xlabel="step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def write_samples(runs: list[Run], path: Path) -> bool:
    """Each run's last sample grid (of the first grid name), side by side under "<run id> @<step>"; False if none."""
    grids = []
    for run in runs:
        files = sorted((run.folder / "samples").glob("step_*.png"))
        if files:
            name = sorted({f.name.split("_", 2)[2] for f in files})[0]
            last = [f for f in files if f.name.endswith(f"_{name}")][-1]
            step = int(last.name.split("_")[1])
            grids.append((f"{run.run_id} @{step}", Image.open(last).convert("RGB")))
    if not grids:
        return False
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [max(grid.width, int(measure.textlength(label)) + 4) for label, grid in grids]
    canvas = Image.new("RGB", (sum(w + 8 for w in widths), max(g.height for _, g in grids) + 16), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for (label, grid), width in zip(grids, widths):
        draw.text((x + 2, 2), label, fill="black")
        canvas.paste(grid, (x, 16))
        x += width + 8
    atomic_write(path, lambda tmp: canvas.save(tmp, format="png"))
    return True


def write_tables(rows: list[dict], out: Path) -> None:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    atomic_write(out / "runs.md", lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    write_csv(out / "runs.csv", rows)


def compare(paths: list[Path], out: Path, metrics: list[str] | None = None) -> list[Path]:
    """Write the comparison of the runs in `paths` into `out`; returns the files written."""
    runs = find_runs(paths)
    logged = {k for run in runs for row in run.history for k in row}
    metrics = [m for m in (metrics or DEFAULT_METRICS) if m in logged]
    if not metrics:
        raise CompareError("none of the metrics to compare was logged by these runs; name some with --metrics")
    out = Path(out)
    write_curves(runs, metrics, out / "curves.png")
    rows = table(runs, metrics)
    write_tables(rows, out)
    written = [out / "curves.png", out / "runs.md", out / "runs.csv"]
    written += [out / "samples.png"] if write_samples(runs, out / "samples.png") else []
    write_page(runs, metrics, rows, out / "curves.png", out / "dashboard.html")
    return [*written, out / "dashboard.html"]


def compare_command(paths: list[Path], out: Path | None = None, metrics: list[str] | None = None) -> int:
    """Put runs side by side, offline: metric curves, a table of what differs, sample grids, an HTML dashboard.

    Args:
        paths: run folders (runs/<project>/<id>) or sweep folders (runs/sweeps/<name>).
        out: output folder (default: <sweep folder>/compare, or runs/compare).
        metrics: metrics to compare (default: those of DEFAULT_METRICS that the runs logged: val/fid val/kid_mean
            val/ssim val/psnr val/lpips).

    Returns:
        0 (the files are written and the table printed).

    Raises:
        CompareError: for a path that is no run or sweep folder, or metrics that no run logged.
    """
    out = out or (paths[0] / "compare" if (paths[0] / "sweep.json").is_file() else Path("runs/compare"))
    written = compare(paths, out, metrics)
    print("\n".join(["wrote:", *(f"  {p}" for p in written)]))
    print((out / "runs.md").read_text())
    return 0
