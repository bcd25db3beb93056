"""What a run gives dashboards, read back from its offline W&B records (`wandb leet inspect --json`) and its run
folder: metric definitions with their best-value summaries, the per-image translation tables, checkpoints as model
artifacts with `log_model`; and `compare`'s self-contained HTML page of two runs."""

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lit_gan.sweep.compare import compare
from tests.helpers import tiny_args

NUM_IMAGES = 2


def records(wandb_run: Path) -> list[dict]:
    """Every record of an offline W&B run, as `wandb leet inspect --json` prints them."""
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    out = subprocess.run([wandb_cli, "leet", "inspect", "--json", str(wandb_run)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def of_type(run: dict, kind: str) -> list[dict]:
    return [record[kind] for record in run["records"] if record["type"] == kind]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Two tiny offline fits, once for the module: a CycleGAN with `log_model best` (2 epochs of 2 steps) and a DCGAN
    (noise: its table holds fixed samples). Per model: its W&B records, run folder and save_dir."""
    from lit_gan.cli import main

    folder = tmp_path_factory.mktemp("dashboards")
    found = {}
    with pytest.MonkeyPatch.context() as mp:  # what conftest's per-test fixture does, for these shared fits
        mp.chdir(folder)
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "LIT_GAN_CACHE"):
            mp.setenv(var, str(folder / var.lower()))
        (folder / "wandb_dir").mkdir()
        for model, extra in (("cyclegan", ["--trainer.logger.init_args.log_model=best"]), ("dcgan", [])):
            before = set((folder / "runs" / "lit_gan").glob("*"))
            args = [
                "--trainer.max_epochs=2",
                "--data.synthetic.train_size=2",
                f"--translations.num_images={NUM_IMAGES}",
            ]
            main(["fit", *tiny_args(*args, *extra, model=model)])
            (run_folder,) = set((folder / "runs" / "lit_gan").glob("*")) - before
            (wandb_run,) = (folder / "runs" / "wandb").glob(f"offline-run-*-{run_folder.name}")
            found[model] = {"records": records(wandb_run), "folder": run_folder, "save_dir": folder / "runs"}
    return found


def test_every_evaluation_metric_is_defined_with_its_best_and_last_value_as_summary(runs):
    run = runs["cyclegan"]
    definitions = {m["name"]: m for m in of_type(run, "metric") if "name" in m}
    logged = {k for h in of_type(run, "history") for k in h["item"] if k.startswith("val/")}
    assert logged >= {"val/fid", "val/fid_AtoB", "val/kid_mean_BtoA", "val/ssim", "val/is_mean", "val/cycle_A"}
    for key in logged:
        assert definitions[key]["step_metric"] == "trainer/global_step", key
    assert definitions["val/fid"]["summary"] == {"min": True, "last": True}
    assert definitions["val/kid_mean_AtoB"]["summary"] == {"min": True, "last": True}
    assert definitions["val/ssim_BtoA"]["summary"] == {"max": True, "last": True}
    assert definitions["val/is_mean"]["summary"] == {"max": True, "last": True}
    summary = {}
    for update in of_type(run, "summary"):
        summary |= update.get("update", {})
    fids = [h["item"]["val/fid"] for h in of_type(run, "history") if "val/fid" in h["item"]]
    steps = [h["item"]["trainer/global_step"] for h in of_type(run, "history") if "val/fid" in h["item"]]
    best = {"min": min(fids), "best_step": steps[fids.index(min(fids))], "last": fids[-1]}
    assert len(fids) == 2 and summary["val/fid"] == best  # the runs table's columns, and the best one's step
    assert summary["best/val/fid"] == pytest.approx(min(fids))


def logged_tables(run: dict, key: str) -> list[dict]:
    """The history rows (flattened) that logged the W&B Table `key`, and the table file each points to."""
    rows = [h["item"] for h in of_type(run, "history") if f"{key}._type" in h["item"]]
    wandb_files = next(run["save_dir"].glob(f"wandb/offline-run-*-{run['folder'].name}")) / "files"
    return [{**row, "table": json.loads((wandb_files / row[f"{key}.path"]).read_text())} for row in rows]


def test_each_evaluation_logs_a_table_of_translations_per_direction(runs):
    run = runs["cyclegan"]
    columns = ["step", "image", "input", "translation", "ssim", "reconstruction", "reconstruction_L1"]
    for direction in ("AtoB", "BtoA"):
        tables = logged_tables(run, f"translations/{direction}")
        assert [t["trainer/global_step"] for t in tables] == [2, 4]  # at each of the two evaluations
        for logged in tables:
            assert logged[f"translations/{direction}._type"] == "table-file"
            assert logged[f"translations/{direction}.nrows"] == NUM_IMAGES
            assert logged["table"]["columns"] == columns
            assert [row[:2] for row in logged["table"]["data"]] == [[logged["trainer/global_step"], i] for i in (0, 1)]
            assert all(-1 <= row[4] <= 1 and row[6] >= 0 for row in logged["table"]["data"])  # SSIM, L1
    # The images are in the table's W&B artifact, and in the run folder for `compare`.
    (artifact,) = {a["name"]: a for a in of_type(run, "artifact") if a["type"] == "run_table" and "AtoB" in a["name"]}
    saved = json.loads((run["folder"] / "translations" / "step_0000004" / "AtoB.json").read_text())
    assert saved["images"] == ["input", "translation", "reconstruction"] and len(saved["rows"]) == NUM_IMAGES
    assert all(
        (run["folder"] / "translations" / "step_0000004" / row["translation"]).is_file() for row in saved["rows"]
    )


def test_a_model_generating_from_noise_logs_its_fixed_samples(runs):
    (*_, last) = logged_tables(runs["dcgan"], "translations/samples")
    assert last["table"]["columns"] == ["step", "image", "output"]
    assert len(last["table"]["data"]) == NUM_IMAGES


def test_log_model_logs_the_best_and_the_last_checkpoint_as_model_artifact_versions(runs):
    run = runs["cyclegan"]
    models = [a for a in of_type(run, "artifact") if a["type"] == "model"]
    assert [a["name"] for a in models] == [f"model-{run['folder'].name}"] * 2
    best, last = (json.loads(a["metadata"]) for a in models)
    assert [set(a["aliases"]) for a in models] == [{"best", "latest"}, {"last", "latest"}]  # "latest" moves on
    assert best["file"] == "best-step0000004.ckpt" and last["file"] == "last.ckpt"
    assert best["monitor"] == "val/fid" and best["step"] == 4 and best["epoch"] == 1
    assert best["score"] == pytest.approx(best["metrics"]["val/fid"])  # the evaluation it was saved with
    assert {"val/fid_AtoB", "val/kid_mean", "val/ssim"} <= set(last["metrics"])
    assert all(a["manifest"]["contents"][0]["path"] == "model.ckpt" for a in models)
    assert not [a for a in of_type(runs["dcgan"], "artifact") if a["type"] == "model"]  # log_model is opt-in


class PageParser(HTMLParser):
    """Collects a page's tags with their attributes, and the runs table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.table: str | None = None
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self.table = attrs.get("id")
        if tag == "tr" and self.table == "runs":
            self.rows.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.table == "runs" and self.rows and data.strip():
            self.rows[-1].append(data.strip())


def test_compare_writes_a_self_contained_sortable_html_dashboard(runs, tmp_path):
    folders = [runs["cyclegan"]["folder"], runs["dcgan"]["folder"]]
    written = compare(folders, tmp_path / "cmp")
    assert written[-1] == tmp_path / "cmp" / "dashboard.html"
    page = PageParser()
    page.feed(written[-1].read_text())
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert images and all(src.startswith("data:image/png;base64,") for src in images)  # every image inline
    for tag, attrs in page.tags:  # nothing the browser would fetch
        assert tag not in ("link", "iframe") and not (tag == "script" and "src" in attrs), (tag, attrs)
        assert not any(k in ("src", "href") and "://" in (v or "") for k, v in attrs.items()), (tag, attrs)
    header, *rows = page.rows
    assert header[:3] == ["run", "best val/fid", "final val/fid"] and "model.class_path" in header
    assert [row[0] for row in rows] == [f.name for f in folders]  # one row per run
    assert ("table", {"class": "sortable", "id": "runs"}) in page.tags
    assert any(tag == "script" for tag, _ in page.tags)  # sorting by a click on a column's header
    headings = written[-1].read_text()
    # The curves, the last grids (CycleGAN's AtoB and BtoA, DCGAN's samples and interpolation), and the translations
    # at the best step: per CycleGAN direction and image its input, translation and reconstruction, DCGAN's samples.
    assert len(images) == 1 + 2 + 2 + 2 * NUM_IMAGES * 3 + NUM_IMAGES
    assert all(f"<h3>{d}</h3>" in headings for d in ("AtoB", "BtoA", "samples", "interpolation"))
    history = [h["item"] for h in of_type(runs["cyclegan"], "history")]
    fid_steps = {h["val/fid"]: h["trainer/global_step"] for h in history if "val/fid" in h}
    best_step = fid_steps[min(fid_steps)] + 1  # the images of the evaluation whose FID Lightning logged a step before
    assert f"<th>{folders[0].name} @{best_step}</th>" in headings
