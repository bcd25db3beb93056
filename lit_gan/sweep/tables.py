"""Tables of runs, shared by the sweep runner and `compare`: best/final metric columns, cells, CSV files."""

import csv
import io
from pathlib import Path

from lit_gan.runs import atomic_write


def best_and_final(metric: str, values: list[float], goal: str = "minimize") -> dict:
    """{"best <metric>", "final <metric>"} of the logged `values` (None when there are none)."""
    best = min if goal == "minimize" else max
    return {f"best {metric}": best(values) if values else None, f"final {metric}": values[-1] if values else None}


def cell(value) -> str:
    """A table cell: "-" for None, 4 significant digits for floats."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_csv(path: Path, rows: list[dict]) -> None:
    """`rows` (dicts with the same keys) as a CSV file, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))
