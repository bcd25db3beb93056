"""`compare`'s offline dashboard: one self-contained HTML page (images and plots inline, no network request).

The page holds the metric curves of every run on shared axes, the table of differing config values and best/final
metrics (sortable: click a column's header), each run's last sample grids side by side, and the per-image
translations of each run at its best evaluation (`lit_gan.callbacks.TranslationTableCallback`'s files).
"""

import base64
import io
import json
from html import escape
from pathlib import Path
from typing import Literal

from PIL import Image

from lit_gan.metric_keys import goal
from lit_gan.runs import atomic_write
from lit_gan.sweep.history import metric_curve
from lit_gan.sweep.tables import cell

MAX_SIDE = {"plot": None, "grid": 1024, "cell": 256}  # pixels an image keeps on the page, by kind
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; cursor: pointer; user-select: none; } th.sorted-asc::after { content: " \\25B2"; }
th.sorted-desc::after { content: " \\25BC"; } td.text { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.cells { display: flex; flex-wrap: nowrap; gap: 8px; align-items: flex-start; }
td.images { text-align: left; } .scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0; display: inline-block; vertical-align: top; max-width: 100%; }
figcaption { font-size: 12px; color: #555; overflow-wrap: anywhere; max-width: 256px; }
img { image-rendering: pixelated; display: block; } img.plot { max-width: 100%; image-rendering: auto; }
img.cell { min-width: 128px; max-width: 256px; } img.grid { min-width: 256px; max-width: 100%; }
"""
SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const table = th.closest("table"), body = table.tBodies[0], ascending = !th.classList.contains("sorted-asc");
  const value = row => { const t = row.cells[column].dataset.value ?? row.cells[column].textContent;
    const n = parseFloat(t); return isNaN(n) ? t : n; };
  const rows = Array.from(body.rows).sort((a, b) => { const x = value(a), y = value(b);
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return ascending ? order : -order; });
  table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(ascending ? "sorted-asc" : "sorted-desc"); rows.forEach(r => body.appendChild(r));
}));
"""


def data_uri(path: Path, max_side: int | None = None) -> str:
    """The PNG file `path` as a data URI (the page loads nothing), scaled down to `max_side` pixels when larger (a
    page of many full-size grids would weigh tens of MB)."""
    data = Path(path).read_bytes()
    if max_side is not None:
        picture = Image.open(io.BytesIO(data))
        if max(picture.size) > max_side:
            picture.thumbnail((max_side, max_side))
            buffer = io.BytesIO()
            picture.save(buffer, format="png")
            data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def image(path: Path, caption: str, kind: Literal["plot", "grid", "cell"]) -> str:
    """A figure of the PNG `path` with its caption: a plot (shrinks to the page's width), a sample grid or a table
    cell (small images scaled up, sharply; large ones scaled down)."""
    img = f'<img class="{kind}" src="{data_uri(path, MAX_SIDE[kind])}" alt="{escape(caption)}">'
    return f"<figure>{img}<figcaption>{escape(caption)}</figcaption></figure>"


def table_html(rows: list[dict]) -> str:
    """The runs table (a row per run: its id, the best and final metrics, then the config values that differ), sortable
    by any column; numbers sort by their full value."""
    metrics = [c for c in rows[0] if c.startswith(("best ", "final "))]
    columns = ["run", *metrics, *(c for c in rows[0] if c != "run" and c not in metrics)]
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            attrs = f' data-value="{value!r}"' if number else ' class="text"'
            cells.append(f"<td{attrs}>{escape(cell(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    table = f'<table class="sortable" id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    return f'<div class="scroll">{table}</div>'


def last_sample_grids(folder: Path) -> dict[str, Path]:
    """A run folder's last sample grid of each name ("AtoB", "samples", ...): `samples/step_<N>_<name>.png`."""
    last: dict[str, Path] = {}
    for file in sorted((folder / "samples").glob("step_*.png")):
        last[file.stem.split("_", 2)[2]] = file  # sorted by step: the last one stays
    return last


def samples_html(runs) -> str:
    """Per grid name, each run's last grid side by side, captioned with the run id and the step."""
    grids = {run.run_id: last_sample_grids(run.folder) for run in runs}
    parts = []
    for name in sorted({n for g in grids.values() for n in g}):
        figures = [
            image(grids[run.run_id][name], f"{run.run_id} @{int(grids[run.run_id][name].stem.split('_')[1])}", "grid")
            for run in runs
            if name in grids[run.run_id]
        ]
        parts.append(f"<h3>{escape(name)}</h3><div class='row'>{''.join(figures)}</div>")
    return "".join(parts) or "<p>No sample grids.</p>"


def best_step(history: list[dict], metric: str) -> int | None:
    """The step of `metric`'s best value in `history` (the first, on ties), or None when it was not logged."""
    curve = metric_curve(history, metric)
    if not curve:
        return None
    pick = min if goal(metric) == "minimize" else max
    return pick(curve, key=lambda point: point[1])[0]


def translations_at(folder: Path, step: int | None) -> tuple[int, dict[str, dict]] | None:
    """A run's translations of the evaluation at `step` (the first saved at or after it: Lightning logs an epoch's
    metrics one step before the evaluation's images; the last one when `step` is None or after all):
    (its step, {direction: the saved rows})."""
    steps = sorted(int(p.name.split("_")[1]) for p in (folder / "translations").glob("step_*") if p.is_dir())
    if not steps:
        return None
    chosen = next((s for s in steps if step is not None and s >= step), steps[-1])
    evaluation = folder / "translations" / f"step_{chosen:07d}"
    tables = {p.stem: json.loads(p.read_text()) for p in sorted(evaluation.glob("*.json"))}
    return chosen, {name: {**t, "folder": evaluation} for name, t in tables.items()}


def translations_html(runs, metric: str) -> str:
    """Per direction, a table with a row per held-out image: its input, then each run's outputs at that run's best
    `metric` step, captioned with the per-image scores."""
    chosen = {}
    for run in runs:
        found = translations_at(run.folder, best_step(run.history, metric))
        if found is not None:
            chosen[run.run_id] = found
    if not chosen:
        return "<p>No translations saved (runs without the translations callback).</p>"
    parts = []
    for direction in sorted({d for _, tables in chosen.values() for d in tables}):
        with_it = [
            (run_id, step, tables[direction]) for run_id, (step, tables) in chosen.items() if direction in tables
        ]
        parts.append(f"<h3>{escape(direction)}</h3>{direction_table(with_it)}")
    return "".join(parts)


def direction_table(runs: list[tuple[str, int, dict]]) -> str:
    """Rows of held-out images: the input (and target) column, when the runs share these images, then a column per
    run with its images (its own inputs too, when runs were evaluated on different images)."""
    first = runs[0][2]
    shared = [c for c in ("input", "target") if all(same_images(first, saved, c) for _, _, saved in runs)]
    head = "<th>image</th>" + "".join(f"<th>{c}</th>" for c in shared)
    head += "".join(f"<th>{escape(run_id)} @{step}</th>" for run_id, step, _ in runs)
    body = []
    for i in range(max(len(t["rows"]) for _, _, t in runs)):
        cells = [f"<td>{i}</td>"]
        cells += [f"<td class='images'>{row_image(first, i, c)}</td>" for c in shared]
        for _, _, saved in runs:
            own = [c for c in saved["images"] if c not in shared]
            cells.append(
                f"<td class='images'><div class='cells'>{''.join(row_image(saved, i, c) for c in own)}</div></td>"
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def same_images(one: dict, other: dict, column: str) -> bool:
    """Whether two saved translation tables hold the same images (file contents) in `column`, row by row."""
    if column not in one["images"] or column not in other["images"] or len(one["rows"]) != len(other["rows"]):
        return False
    files = zip((one["folder"] / r[column] for r in one["rows"]), (other["folder"] / r[column] for r in other["rows"]))
    return all(a.read_bytes() == b.read_bytes() for a, b in files)


def row_image(saved: dict, i: int, column: str) -> str:
    """Image `column` of row `i` of a saved translations table, captioned with the column (and, for the output
    image, the row's scores)."""
    if i >= len(saved["rows"]):
        return ""
    row = saved["rows"][i]
    scores = [f"{k} {v:.3g}" for k, v in row.items() if k not in saved["images"] and k != "image"]
    caption = column + (f" ({', '.join(scores)})" if scores and column in ("translation", "output") else "")
    return image(saved["folder"] / row[column], caption, "cell")


def write_page(runs, metrics: list[str], rows: list[dict], curves: Path, path: Path) -> None:
    """Write the dashboard of `runs` (table `rows`, the curves PNG `curves`) to `path`, atomically."""
    title = f"lit_gan: {len(runs)} runs compared"
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Runs: {escape(', '.join(run.run_id for run in runs))}. Best is the lowest value, but for SSIM, PSNR and "
        "the Inception Score the highest. Click a column to sort.</p>",
        "<h2>Runs</h2>",
        table_html(rows),
        "<h2>Curves</h2>",
        image(curves, ", ".join(metrics) + " over trainer/global_step", "plot"),
        "<h2>Last sample grids</h2>",
        samples_html(runs),
        f"<h2>Translations at each run's best {escape(metrics[0])}</h2>",
        translations_html(runs, metrics[0]),
    ]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{SORT_SCRIPT}</script></body></html>\n"
    )
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
