"""`python -m lit_gan sweep`: trials run offline with W&B's engine, a sweep resumes where it stopped; `compare`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from lit_gan.lightning_cli import rejected_arguments
from lit_gan.sweep.compare import CompareError, compare
from lit_gan.sweep.config import SweepConfigError
from lit_gan.sweep.runner import SweepRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
    """A 3-trial grid over tiny CycleGAN runs (2 epochs of 4 steps, a tiny feature extractor)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    (tmp_path / "configs").mkdir()
    shutil.copy(Path(__file__).with_name("tiny_config.yaml"), tmp_path / "configs" / "tiny.yaml")
    sweep = {
        "name": "tiny_grid",
        "method": "grid",
        "metric": {"name": "val/fid", "goal": "minimize"},
        "parameters": {"model.lr": {"values": [0.0001, 0.0002, 0.0004]}},
        "command": ["${env}", "python", "-m", "lit_gan", "fit", "--config", "configs/tiny.yaml", "${args}"],
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.mark.slow  # whole sweep trials as subprocesses
def test_grid_sweep_runs_offline_and_resumes_with_only_the_remaining_trials(sweep_file, tmp_path):
    first = SweepRunner(sweep_file, count=1, poll_s=0.5, check_arguments=rejected_arguments).run()
    assert [(t.name, t.state) for t in first] == [("trial-000", "finished")]

    # the same sweep again: the 2 remaining grid points
    trials = SweepRunner(sweep_file, poll_s=0.5, check_arguments=rejected_arguments).run()
    assert [t.name for t in trials] == ["trial-000", "trial-001", "trial-002"]
    assert trials[0].run_id == first[0].run_id
    assert len(list((tmp_path / "runs" / "wandb").glob("offline-run-*"))) == 3  # trial-000 did not run again
    assert sorted(t.params["model.lr"] for t in trials) == [0.0001, 0.0002, 0.0004]

    table = json.loads((tmp_path / "runs" / "sweeps" / "tiny_grid" / "trials.json").read_text())
    assert [row["state"] for row in table] == ["finished"] * 3
    assert all(row["final val/fid"] > 0 and row["best val/fid"] <= row["final val/fid"] for row in table)
    csv = (tmp_path / "runs" / "sweeps" / "tiny_grid" / "trials.csv").read_text().splitlines()
    assert csv[0] == "trial,run_id,state,model.lr,best val/fid,final val/fid" and len(csv) == 4

    # Comparing the sweep's runs, offline, from their local files.
    sweep_folder = tmp_path / "runs" / "sweeps" / "tiny_grid"
    written = compare([sweep_folder], tmp_path / "cmp")
    assert [p.name for p in written] == ["curves.png", "runs.md", "runs.csv", "samples.png", "dashboard.html"]
    rows = (tmp_path / "cmp" / "runs.md").read_text().splitlines()
    assert rows[0] == (
        "| run | model.lr | best val/fid | final val/fid | best val/kid_mean | final val/kid_mean "
        "| best val/ssim | final val/ssim |"  # CycleGAN's content preservation; no PSNR or LPIPS logged
    )
    assert [row.split(" | ")[0].strip("| ") for row in rows[2:]] == [t.run_id for t in trials]
    assert (tmp_path / "cmp" / "runs.csv").read_text().count("\n") == 4
    curves, samples = Image.open(tmp_path / "cmp" / "curves.png"), Image.open(tmp_path / "cmp" / "samples.png")
    assert curves.width > 1500 and samples.width > 3 * 70  # three metric panels; three grids side by side

    one_run = tmp_path / "runs" / "lit_gan" / trials[1].run_id
    compare([one_run, tmp_path / "runs" / "lit_gan" / trials[2].run_id], tmp_path / "cmp2", ["val/fid"])
    assert "model.lr" in (tmp_path / "cmp2" / "runs.md").read_text()
    with pytest.raises(CompareError, match="neither a run folder"):
        compare([tmp_path / "configs"], tmp_path / "cmp3")


@pytest.mark.slow  # whole sweep trials as subprocesses
def test_ctrl_c_stops_the_running_trial_and_the_sweep_resumes(sweep_file, tmp_path):
    command = [sys.executable, "-m", "lit_gan", "sweep", str(sweep_file), "--count", "2"]
    runner = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = tmp_path / "runs" / "sweeps" / "tiny_grid" / "sweep.json"
    deadline = time.time() + 120
    while time.time() < deadline and '"running"' not in (state.read_text() if state.is_file() else ""):
        time.sleep(0.2)
    time.sleep(3)  # the trial is training
    runner.send_signal(signal.SIGINT)
    output, _ = runner.communicate(timeout=120)
    assert runner.returncode == 130, output
    assert "interrupted; run the same command again to resume" in output
    assert [t["state"] for t in json.loads(state.read_text())["trials"]] == ["killed"]

    trials = SweepRunner(sweep_file, count=2, poll_s=0.5, check_arguments=rejected_arguments).run()
    assert [(t.name, t.state) for t in trials] == [("trial-000", "finished"), ("trial-001", "finished")]


def test_random_and_bayes_sweeps_need_a_count(sweep_file):
    config = yaml.safe_load(sweep_file.read_text()) | {"method": "random"}
    sweep_file.write_text(yaml.safe_dump(config))
    with pytest.raises(SweepConfigError, match="a random sweep needs --count"):
        SweepRunner(sweep_file, check_arguments=rejected_arguments)
