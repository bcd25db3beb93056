"""Reading runs back from their local files: the W&B run's history (via `wandb leet inspect`) and the run folder."""

import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from lit_gan.journal import history_keys
from lit_gan.metric_keys import PERF


def wandb_run_dirs(save_dir: Path, run_id: str) -> list[Path]:
    """The W&B run folders of `run_id` under `<save_dir>/wandb` (offline or synced), oldest first: one per start of
    the run (a resumed run writes a new one); `save_dir` is the logger's save_dir (`runs`), which also holds the run
    folders `<save_dir>/<project>/<run id>`."""
    return sorted((Path(save_dir) / "wandb").glob(f"*run-*-{run_id}"))  # the names start with the start time


def run_history(save_dir: Path, run_id: str) -> list[dict]:
    """Every row run `run_id` logged, over all its starts (resumes), in the order of their `trainer/global_step`
    (rows logged at one step in the order they were logged; a row without one goes with the row before it): a resumed
    run logs the rows that W&B had lost again from the run's journal, after the rows of later steps."""
    rows = [row for folder in wandb_run_dirs(save_dir, run_id) for row in wandb_history(folder)]
    steps, step = [], -1
    for row in rows:
        step = int(row.get("trainer/global_step", step))
        steps.append(step)
    return [row for _, _, row in sorted(zip(steps, range(len(rows)), rows), key=lambda t: t[:2])]


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


def history_values(rows: list[dict]) -> Counter:
    """Every value in the history `rows` as a count of (step, key, value): numbers as logged, media by their content
    (an image's or a table's sha256, the content hashes of a list of images), timings (`perf/...`) by their presence
    only, W&B's own `_` keys left out; for comparing two runs' records (two runs that computed the same things have
    the same counts)."""
    values: Counter = Counter()
    for row in rows:
        if "trainer/global_step" not in row:
            continue
        step = int(row["trainer/global_step"])
        for key in history_keys(row):
            if f"{key}._type" in row:
                value = _media_content(row, key)
            else:
                value = "(a timing)" if key.startswith(PERF) else _comparable(row[key])
            values[(step, key, value)] += 1
    return values


def history_differences(rows: list[dict], expected: list[dict]) -> dict[str, list[tuple[int, str, Any]]]:
    """{"missing": ..., "extra": ...}: the (step, key, value) entries of the `expected` history that `rows` lacks
    and those it has in excess (a value logged twice is one extra; a differing value is one of each), sorted."""
    got, want = history_values(rows), history_values(expected)
    return {"missing": sorted((want - got).elements(), key=str), "extra": sorted((got - want).elements(), key=str)}


def _comparable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"  # equal to itself, unlike the float
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def _media_content(row: dict, key: str) -> tuple:
    kind = row[f"{key}._type"]
    if f"{key}.sha256" in row:
        return (kind, row[f"{key}.sha256"])
    files = row.get(f"{key}.filenames") or []  # a list of images: media/images/<key>_<_step>_<content hash>.png
    return (kind, tuple(Path(f).stem.rsplit("_", 1)[-1] for f in files))
