"""The run's journal: everything a run logs, with its step, in a local file that travels with its checkpoints.

W&B's service writes a run's history from its own process and loses the rows it has not written yet when it is
killed with the training process (preemption, the OOM killer, a closed laptop); a run resumed on another machine has
no W&B files at all. The journal is the record that survives: `WandbLogger` appends one JSON line per `log_metrics`
call to `<run>/checkpoints/journal.jsonl` before handing the values to W&B, flushed to the operating system at once
(a killed process loses nothing it wrote; a power cut may lose the last lines, as it may lose the last checkpoint).
On resume the rows W&B lost are logged again from it at their own steps (`WandbLogger.continue_run`).

A line is `{"step": 12, "values": {"train/G": 0.51, "epoch": 0, "samples/AtoB": {"_type": "images", ...}}}`. Numbers
are stored exactly (JSON's shortest repr of a float round-trips); media by reference to the files the run saved
(sample grids, translation tables: `lit_gan`'s callbacks log them from their files in the run folder), so that they
can be logged again; media without a file of their own are recorded as having been logged (`"replayable": false`).
"""

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lit_gan.metric_keys import PERF, STEP_KEY

JOURNAL_NAME = "journal.jsonl"


@dataclass(frozen=True)
class JournalEntry:
    """One `log_metrics` call: its step (None when logged without one) and its values, encoded (`encode_value`)."""

    step: int | None
    values: dict[str, Any]


class RunJournal:
    """Appends entries to the journal at `path` (made with its folder on first use), each line flushed at once.

    Opening an existing journal first cuts off an incomplete last line (a process killed mid-write), so that the new
    lines start on a line of their own. Media are stored by their file's path relative to `root` (the run folder)."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.root = Path(path), Path(root)
        self._file: IO[str] | None = None

    def append(self, step: int | None, values: Mapping[str, Any]) -> None:
        line = json.dumps({"step": step, "values": {k: encode_value(v, self.root) for k, v in values.items()}})
        file = self._open()
        file.write(line + "\n")
        file.flush()

    def _open(self) -> IO[str]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut_incomplete_line(self.path)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open while the run logs)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def cut_incomplete_line(path: Path) -> None:
    """Truncate the file at `path` (when there is one) after its last newline."""
    try:
        with open(path, "rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return
            file.seek(size - 1)
            if file.read(1) == b"\n":
                return
            data = (file.seek(0), file.read())[1]
            file.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


def read_journal(path: Path) -> list[JournalEntry]:
    """The entries of the journal at `path`, in the order they were logged ([] when there is none); an incomplete
    last line (a process killed mid-write) is left out, a damaged line elsewhere raises ValueError naming it."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):  # no newline after it: cut short by a kill
                break
            raise ValueError(f"{path}, line {number}: not a journal line ({error}); delete the line to go on") from None
        step = record.get("step")
        entries.append(JournalEntry(None if step is None else int(step), dict(record.get("values", {}))))
    return entries


def encode_value(value: Any, root: Path) -> Any:
    """A logged value as JSON: numbers as they are; a W&B image, list of images or table by the files they come from
    (relative to `root`); anything else as its type, marked not replayable."""
    number = _number(value)
    if number is not None:
        return number
    if isinstance(value, str):
        return value
    import wandb

    if isinstance(value, wandb.Image):
        path = _media_file(value, root)
        return {"_type": "image", "path": path} if path else _unreplayable(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, wandb.Image) for v in value):
        paths = [_media_file(v, root) for v in value]
        return {"_type": "images", "paths": paths} if all(paths) else _unreplayable(value)
    if isinstance(value, wandb.Table):
        data = [[_table_cell(cell, root) for cell in row] for row in value.data]
        if any(cell is _NO_FILE for row in data for cell in row):
            return _unreplayable(value)
        return {"_type": "table", "columns": list(value.columns), "data": data}
    return _unreplayable(value)


def decode_value(value: Any, root: Path) -> Any:
    """What `encode_value` stored, as a value to log again (W&B media made from their files under `root`); None when
    it cannot be (not replayable, or its file is gone)."""
    if not isinstance(value, dict):
        return value
    import wandb

    kind = value.get("_type")
    files = {"image": [value.get("path")], "images": value.get("paths") or []}.get(kind)
    if kind == "table":
        files = [cell["path"] for row in value["data"] for cell in row if isinstance(cell, dict)]
    if files is None or not all(f and (Path(root) / f).is_file() for f in files):
        return None
    if kind == "image":
        return wandb.Image(str(Path(root) / value["path"]))
    if kind == "images":
        return [wandb.Image(str(Path(root) / p)) for p in value["paths"]]
    data = [
        [wandb.Image(str(Path(root) / c["path"])) if isinstance(c, dict) else c for c in row] for row in value["data"]
    ]
    return wandb.Table(columns=value["columns"], data=data)


_NO_FILE = object()


def _table_cell(cell: Any, root: Path) -> Any:
    import wandb

    if isinstance(cell, wandb.Image):
        path = _media_file(cell, root)
        return {"_type": "image", "path": path} if path else _NO_FILE
    number = _number(cell)
    if number is not None or cell is None or isinstance(cell, str):
        return cell if number is None else number
    return _NO_FILE


def _media_file(media: Any, root: Path) -> str | None:
    """The path, relative to `root`, of the file a W&B media object was made from; None for a temporary file W&B
    wrote itself (made from a tensor or an array) or a file outside `root`."""
    path = getattr(media, "_path", None)
    if not path or getattr(media, "_is_tmp", True):
        return None
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return None


def _unreplayable(value: Any) -> dict[str, Any]:
    return {"_type": type(value).__name__, "replayable": False}


def _number(value: Any) -> float | int | None:
    """`value` as a plain int or float (bools as ints; 0-d tensors and numpy scalars too), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if callable(getattr(value, "item", None)) and tuple(getattr(value, "shape", (0,))) == ():
        item = value.item()
        return _number(item) if isinstance(item, int | float) else None
    return None


# -- comparing the journal with the W&B history ---------------------------------------------------------------------


def history_keys(row: Mapping[str, Any]) -> list[str]:
    """The logged keys of a W&B history row (as `lit_gan.sweep.history.wandb_history` reads it): media are there as
    flattened keys (`samples/AtoB._type`, `samples/AtoB.path`, ...), counted once under their own key; W&B's own `_`
    keys and the step key left out."""
    media = {key[: -len("._type")] for key in row if key.endswith("._type")}
    keys = []
    for key in row:
        if key.startswith("_") or key == STEP_KEY:
            continue
        if key.endswith("._type"):
            keys.append(key[: -len("._type")])
        elif not any(key.startswith(f"{m}.") for m in media):
            keys.append(key)
    return keys


def missing_from_history(
    entries: Iterable[JournalEntry], *histories: Iterable[Mapping[str, Any]]
) -> list[JournalEntry]:
    """The journal's values that none of the `histories` (lists of W&B history rows: the local files', the
    server's) holds, as entries at their own steps, in journal order.

    A key logged n times at a step (Lightning adds `epoch` to the training row and to the validation row of a step)
    counts as present n times: each of the journal's entries is matched with a row's value once."""
    present: Counter[tuple[int, str]] = Counter()
    for rows in histories:
        counts: Counter[tuple[int, str]] = Counter()
        for row in rows:
            if STEP_KEY in row:
                counts.update((int(row[STEP_KEY]), key) for key in history_keys(row))
        present |= counts  # the larger count of each key at each step
    missing = []
    for entry in entries:
        if entry.step is None:
            continue
        values = {}
        for key, value in entry.values.items():
            if present[(entry.step, key)] > 0:
                present[(entry.step, key)] -= 1
            else:
                values[key] = value
        if values:
            missing.append(JournalEntry(entry.step, values))
    return missing


def flatten_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A history row as the W&B server's API gives it (media as nested dicts) in the local files' form
    (`samples/AtoB._type`, ...)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping) and "_type" in value:
            flat.update({f"{key}.{part}": v for part, v in value.items()})
        else:
            flat[key] = value
    return flat


def last_journal_steps(entries: Iterable[JournalEntry]) -> dict[str, int]:
    """The last step each key was logged at in the journal."""
    last: dict[str, int] = {}
    for entry in entries:
        if entry.step is not None:
            for key in entry.values:
                last[key] = max(entry.step, last.get(key, entry.step))
    return last


def journal_numbers(entries: Iterable[JournalEntry]) -> list[tuple[int, dict[str, float]]]:
    """(step, {key: number}) of every entry with a step, numbers only (NaN and infinities included)."""
    return [
        (e.step, {k: v for k, v in e.values.items() if isinstance(v, int | float) and not isinstance(v, bool)})
        for e in entries
        if e.step is not None
    ]


def journal_values(entries: Iterable[JournalEntry]) -> Counter:
    """Every value in the journal as a count of (step, key, value as JSON), timings (`perf/...`) by their presence
    only: two runs that computed the same things have the same counts."""
    return Counter(
        (e.step, key, "(a timing)" if key.startswith(PERF) else json.dumps(value, sort_keys=True))
        for e in entries
        for key, value in e.values.items()
    )
