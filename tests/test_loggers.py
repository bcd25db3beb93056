import json
import logging
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import wandb
from PIL import Image

from lit_gan.journal import (
    JOURNAL_NAME,
    JournalEntry,
    RunJournal,
    decode_value,
    encode_value,
    missing_from_history,
    read_journal,
)
from lit_gan.loggers import WandbLogger, wandb_credentials_available
from lit_gan.sweep.history import metric_curve, run_history, wandb_run_dirs


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    yield tmp_path / "netrc"


def test_credentials_from_env_or_netrc(no_wandb_env, monkeypatch):
    assert not wandb_credentials_available()
    no_wandb_env.write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    assert wandb_credentials_available()
    no_wandb_env.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_credentials_available()


@pytest.mark.parametrize(
    ("env_mode", "credentials", "expected_offline"),
    [(None, False, True), (None, True, False), ("offline", True, True), ("online", False, False)],
)
def test_mode_is_chosen_without_prompting(no_wandb_env, monkeypatch, env_mode, credentials, expected_offline):
    if env_mode:
        monkeypatch.setenv("WANDB_MODE", env_mode)
    if credentials:
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert WandbLogger(save_dir="runs")._offline_mode is expected_offline
    assert WandbLogger(save_dir="runs", offline=True)._offline_mode is True


def test_offline_run_ends_with_one_sync_line(no_wandb_env, caplog):
    logger = WandbLogger(save_dir="runs", name="t")
    logger.log_metrics({"x": 1.0}, step=0)
    with caplog.at_level(logging.INFO):
        logger.finalize("success")
    lines = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(lines) == 1 and "runs/wandb/offline-run-" in lines[0]
    assert logger._experiment is None  # finished, so a later run in this process gets its own W&B run


def summary_of(run_dir: Path) -> dict:
    wandb_cli = shutil.which("wandb", path=str(Path(sys.executable).parent)) or shutil.which("wandb")
    inspect = [wandb_cli, "leet", "inspect", "--summary", "--json", str(run_dir)]
    return json.loads(subprocess.run(inspect, capture_output=True, text=True).stdout)["summary"]


def grid_file(run: Path, step: int, shade: int) -> str:
    """A sample grid PNG in the run folder, as the samples callback saves it (the journal refers to it)."""
    path = run / "samples" / f"step_{step:07d}_AtoB.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(path)
    return str(path)


def first_start() -> tuple[str, Path]:
    """A first start that logs steps 0-7 of a loss, FID at 3 (10.0), a table at 3, sample grids at 4 and 7, and is
    then killed with W&B's service: W&B wrote steps 0-5, the journal holds everything. Its last checkpoint: step 2."""
    first = WandbLogger(save_dir="runs", offline=True)
    run = Path("runs") / first.name / first.experiment.id
    for step in range(6):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.log_metrics({"val/fid": 10.0}, step=3)
    first.log_metrics({"translations/AtoB": wandb.Table(columns=["image"], data=[[0]])}, step=3)
    first.log_image("samples/AtoB", [grid_file(run, 4, 40)], step=4)
    first.finalize("failed")
    # Steps 6 and 7 reached the journal, not W&B's files: the service died before writing them.
    journal = RunJournal(run / "checkpoints" / JOURNAL_NAME, root=run)
    for step in (6, 7):
        journal.append(step, {"train/loss": float(step)})
    journal.append(7, {"samples/AtoB": [wandb.Image(grid_file(run, 7, 70))]})
    journal.close()
    return run.name, run


@pytest.mark.parametrize("wandb_files", ["kept", "moved away"])
def test_a_resumed_run_completes_its_history_from_the_journal_and_logs_each_step_once(tmp_path, wandb_files):
    run_id, run = first_start()
    # W&B names a start's folder by its start time, to the second: two starts of one run within a second (only possible
    # in one process, as here; a real restart takes seconds) would share a folder.
    time.sleep(1.1)
    if wandb_files == "moved away":  # resumed on another machine: only the run folder (checkpoints, journal) came along
        shutil.move("runs/wandb", tmp_path / "elsewhere")
    earlier = run_history(Path("runs"), run_id)
    journal = read_journal(run / "checkpoints" / JOURNAL_NAME)
    assert len(journal) == 12 and len(earlier) == (9 if wandb_files == "kept" else 0)

    second = WandbLogger(save_dir="runs", offline=True)
    second.continue_run(run_id, earlier, journal)
    assert second.replayed == (3 if wandb_files == "kept" else 12)  # steps 6 and 7 and the grid at 7, or everything
    for step in range(3, 10):  # retrains from the checkpoint at step 2, with the same values
        second.log_metrics({"train/loss": float(step), "train/lr": 0.1}, step=step)  # train/lr is new at every step
        if step in (4, 7):
            second.log_image("samples/AtoB", [grid_file(run, step, step * 10)], step=step)
    second.log_metrics({"val/fid": 10.0}, step=3)  # logged before: left out
    second.log_metrics({"val/fid": 20.0}, step=6)
    second.log_metrics({"val/fid": 5.0}, step=9)
    for step in (3, 9):  # a table (or image) is in the history as flattened keys: logged again at step 9 only
        second.log_metrics({"translations/AtoB": wandb.Table(columns=["image"], data=[[0]])}, step=step)
    second.finalize("success")

    rows = run_history(Path("runs"), run_id)  # in step order, the lost rows logged again included
    assert metric_curve(rows, "train/loss") == [(step, float(step)) for step in range(10)]  # each step once
    assert metric_curve(rows, "train/lr") == [(step, 0.1) for step in range(3, 10)]  # a key new in this start
    assert metric_curve(rows, "val/fid") == [(3, 10.0), (6, 20.0), (9, 5.0)]
    assert [row["trainer/global_step"] for row in rows if "translations/AtoB._type" in row] == [3, 9]
    grids = [row for row in rows if "samples/AtoB._type" in row]
    assert [row["trainer/global_step"] for row in grids] == [4, 7]
    assert [row["samples/AtoB.count"] for row in grids] == [1, 1]
    # The journal holds every logged value once, this start's appended to the first's.
    counts = Counter(
        (entry.step, key) for entry in read_journal(run / "checkpoints" / JOURNAL_NAME) for key in entry.values
    )
    assert set(counts.values()) == {1} and counts[(9, "train/loss")] == 1 and counts[(4, "samples/AtoB")] == 1
    # The summary's best FID and its step are the whole run's (W&B's own would only see the second start's values).
    summary = summary_of(wandb_run_dirs(Path("runs"), run_id)[-1])
    assert summary["val/fid"] == {"min": 5.0, "best_step": 9, "last": 5.0}


def test_a_journal_cut_short_by_a_kill_loses_only_its_unfinished_line(tmp_path):
    journal = RunJournal(tmp_path / "j" / JOURNAL_NAME, root=tmp_path)
    journal.append(0, {"train/loss": 0.5, "epoch": 0, "flag": True, "nan": float("nan")})
    journal.append(1, {"train/loss": 0.25})
    journal.close()
    with open(tmp_path / "j" / JOURNAL_NAME, "a") as file:
        file.write('{"step": 2, "values": {"train/lo')  # killed mid-write
    entries = read_journal(tmp_path / "j" / JOURNAL_NAME)
    assert [(e.step, e.values["train/loss"]) for e in entries] == [(0, 0.5), (1, 0.25)]
    assert entries[0].values["flag"] == 1 and entries[0].values["nan"] != entries[0].values["nan"]  # NaN kept
    journal.append(2, {"train/loss": 0.125})  # the next start goes on after the last complete line
    journal.close()
    assert [e.step for e in read_journal(tmp_path / "j" / JOURNAL_NAME)] == [0, 1, 2]
    (tmp_path / "j" / JOURNAL_NAME).write_text('{"step": 0, "values": {}}\nnot json\n{"step": 1, "values": {}}\n')
    with pytest.raises(ValueError, match=r"journal.jsonl, line 2: not a journal line"):
        read_journal(tmp_path / "j" / JOURNAL_NAME)


def test_media_are_journaled_by_their_files_and_logged_again_from_them(tmp_path):
    (tmp_path / "samples").mkdir()
    grid = tmp_path / "samples" / "g.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(grid)
    image = encode_value(wandb.Image(str(grid)), tmp_path)
    assert image == {"_type": "image", "path": "samples/g.png"}
    table = encode_value(wandb.Table(columns=["i", "x", "img"], data=[[0, 0.5, wandb.Image(str(grid))]]), tmp_path)
    assert table == {"_type": "table", "columns": ["i", "x", "img"], "data": [[0, 0.5, image]]}
    assert encode_value([wandb.Image(str(grid))], tmp_path) == {"_type": "images", "paths": ["samples/g.png"]}
    # Made from pixels (W&B's own temporary file) or outside the run folder: recorded, not replayable.
    assert encode_value(wandb.Image(np.zeros((4, 4, 3), np.uint8)), tmp_path) == {"_type": "Image", "replayable": False}
    assert encode_value(wandb.Image(str(grid)), tmp_path / "samples" / "other") == {
        "_type": "Image",
        "replayable": False,
    }
    assert decode_value({"_type": "Image", "replayable": False}, tmp_path) is None
    assert decode_value(0.5, tmp_path) == 0.5
    again = decode_value(table, tmp_path)
    assert again.columns == ["i", "x", "img"] and again.data[0][:2] == [0, 0.5]
    assert Path(again.data[0][2]._path) == grid
    grid.unlink()  # its file gone: not logged again rather than logged wrong
    assert decode_value(image, tmp_path) is None and decode_value(table, tmp_path) is None


def test_missing_rows_count_a_key_logged_twice_at_a_step_twice():
    # Lightning adds `epoch` to the training row and to the validation row of a step: two values at one step.
    journal = [JournalEntry(5, {"train/G": 1.0, "epoch": 0}), JournalEntry(5, {"val/fid": 9.0, "epoch": 0})]
    history = [{"trainer/global_step": 5, "train/G": 1.0, "epoch": 0, "_step": 3}]
    assert missing_from_history(journal, history) == [JournalEntry(5, {"val/fid": 9.0, "epoch": 0})]
    grid = {"trainer/global_step": 5, "samples/AtoB._type": "images/separated", "samples/AtoB.count": 1}
    assert missing_from_history([JournalEntry(5, {"samples/AtoB": {"_type": "images"}})], [grid]) == []


def test_an_online_run_resumed_elsewhere_does_not_log_again_what_the_server_holds(monkeypatch):
    # The server holds steps 0-3 (uploaded from the first machine before it died), the journal steps 0-5; this machine
    # has no W&B files of the run.
    server = [{"_step": s, "trainer/global_step": s, "train/loss": float(s)} for s in range(4)]
    server.append({"_step": 4, "trainer/global_step": 3, "samples/AtoB": {"_type": "images/separated", "count": 1}})

    class FakeRun:
        def scan_history(self):
            return iter(server)

    class FakeApi:
        default_entity = "me"

        def __init__(self, timeout=None):
            pass

        def run(self, path):
            assert path == "me/lit_gan/abc123"
            return FakeRun()

    monkeypatch.setattr(wandb, "Api", FakeApi)
    logger = WandbLogger(save_dir="runs", offline=True)
    rows = logger.server_history("abc123")
    assert rows[-1] == {"_step": 4, "trainer/global_step": 3, "samples/AtoB._type": "images/separated",
                        "samples/AtoB.count": 1}  # fmt: skip
    journal = [JournalEntry(s, {"train/loss": float(s)}) for s in range(6)]
    journal.append(JournalEntry(3, {"samples/AtoB": {"_type": "images", "paths": ["x.png"]}}))
    logger.continue_run("abc123", [], journal, server_rows=rows)
    assert logger.replayed == 2  # steps 4 and 5; the grid at 3 is on the server
    logger.finalize("success")
    assert metric_curve(run_history(Path("runs"), "abc123"), "train/loss") == [(4, 4.0), (5, 5.0)]

    def unreachable(timeout=None):
        raise ConnectionError("no network")

    monkeypatch.setattr(wandb, "Api", unreachable)
    with pytest.warns(UserWarning, match="could not read run abc123's history from the server"):
        assert WandbLogger(save_dir="runs", offline=True).server_history("abc123") == []


def test_the_journal_can_be_turned_off():
    for journal in (True, False):
        logger = WandbLogger(save_dir=f"runs_{journal}", offline=True, journal=journal)
        logger.log_metrics({"train/loss": 1.0}, step=0)
        run = Path(f"runs_{journal}") / logger.name / logger.version
        logger.finalize("success")
        assert (run / "checkpoints" / JOURNAL_NAME).is_file() is journal
