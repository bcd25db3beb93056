"""Distributed training: 2-process DDP runs on the CPU (gloo) of every model, through the CLI.

Lightning's `ddp` strategy starts the other processes by running the command line again, so each run is
`python -m lit_gan` in a subprocess, never inside pytest's process. Each process writes what the tests compare
across processes (`RankReport`).
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from lit_gan.callbacks import MetricsCallback
from lit_gan.cli import main
from lit_gan.contracts import TrainsInPhases
from tests.helpers import TINY_MODELS, batches_per_epoch, tiny_args

pytestmark = pytest.mark.slow  # 2-process DDP runs

REPO = Path(__file__).resolve().parents[1]
N_HELD_OUT = 3  # held-out images per domain: shards of 2 and 1 images, so the gather pads the shorter one
SHARDS = {rank: len(range(rank, N_HELD_OUT, 2)) for rank in (0, 1)}  # images each process generates per direction
# Three training steps, then one validation (its FID/KID at the last step only) and the sample grids.
DDP = [
    "--trainer.strategy=ddp",
    "--trainer.devices=2",
    "--trainer.max_steps=3",
    "--metrics.every_n_epochs=0",
    "--metrics.batch_size=1",  # each image generated alone, so that batching cannot change a bit between runs
    f"--data.synthetic.test_size={N_HELD_OUT}",
    "--trainer.callbacks+=tests.test_ddp.RankReport",
]


def digest(tensors) -> str:
    sha = hashlib.sha1()
    for tensor in tensors:
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class RankReport(Callback):
    """Writes `rank<R>_<stage>.json` in the working folder at the end of a fit or validate: a digest of the
    parameters (before and after fit) and of the first training batch, of the image pools' generator states, the
    last FID/KID/IS results, the logged metrics, and how many images the feature extractor encoded; and what the
    model says it makes, so that no test names a model: its sample grids, its training and held-out loss keys, the
    sets an evaluation scores and how many generators each is scored with (the average's and the trained one's)."""

    def __init__(self) -> None:
        self.report: dict = {}

    def _metrics(self, trainer) -> MetricsCallback:
        return next(c for c in trainer.callbacks if isinstance(c, MetricsCallback))

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.report = {"params_start": digest(pl_module.parameters())}
        self.report["encoded_start"] = self._metrics(trainer).extractor.images_seen

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.report.setdefault("first_batch", digest([batch["A"]]))
        self.report.setdefault("first_batch_size", len(batch["A"]))
        if isinstance(pl_module, TrainsInPhases):  # its phases' batch sizes are global, over the processes
            self.report.setdefault("phase_batch_size", pl_module.training_phase(trainer.current_epoch).batch_size)
        self.report.setdefault("rng", digest([torch.get_rng_state()]))  # what noise and dropout draw from

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if "held_out_losses" not in self.report:
            with torch.random.fork_rng(), torch.no_grad():  # the run's random stream stays as it was
                self.report["held_out_losses"] = sorted(f"val/{k}" for k in pl_module.evaluation_losses(batch))

    def on_fit_end(self, trainer, pl_module) -> None:
        batch = {k: v.to(pl_module.device) for k, v in trainer.datamodule.sample_batch(1).items()}
        with torch.random.fork_rng(), torch.no_grad():
            self.report["grids"] = sorted(pl_module.sample_images(batch))
        self.report["train_losses"] = sorted(pl_module.step_losses)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        metrics = self._metrics(trainer)
        pools = list(pl_module.pools.values())
        sets = metrics.evaluation_sets(pl_module)
        self.report |= {
            "targets_encoded": len({direction.target for _, direction, _ in sets}),
            "sets_scored": len(sets),
            "generators_scored": 1 + bool(metrics.raw_generators and getattr(pl_module, "ema", None) is not None),
            "has_pools": bool(pools),
            "params": digest(pl_module.parameters()),
            "pools": digest(pool.generator.get_state() for pool in pools),
            "results": {k: v for k, v in metrics.results.items() if not k.startswith("perf/")},
            "logged": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "encoded": metrics.extractor.images_seen - self.report["encoded_start"],
        }
        Path(f"rank{trainer.global_rank}_{trainer.state.fn.value}.json").write_text(json.dumps(self.report, indent=1))


def run_cli(folder: Path, *args: str) -> None:
    """`python -m lit_gan ARGS` in `folder`, as a user would start it: W&B offline, one thread per process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_", "PL_", "LOCAL_RANK"))}
    env = {k: v for k, v in env.items() if k not in ("RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK")}
    env |= {
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(folder / "wandb_dir"),
        "WANDB_CACHE_DIR": str(folder / "wandb_cache"),
        "WANDB_CONFIG_DIR": str(folder / "wandb_config"),
        "WANDB_DATA_DIR": str(folder / "wandb_data"),
        "LIT_GAN_CACHE": str(folder / "lit_gan_cache"),
    }
    (folder / "wandb_dir").mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "lit_gan", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def reports(folder: Path, stage: str) -> dict[int, dict]:
    return {rank: json.loads((folder / f"rank{rank}_{stage}.json").read_text()) for rank in (0, 1)}


@pytest.fixture(scope="session")
def ddp_fit_folder(tmp_path_factory):
    """model -> the folder of a 2-process fit of the tiny `model` (each run once per test session)."""
    runs: dict[str, Path] = {}

    def folder_of(model: str) -> Path:
        if model not in runs:
            folder = tmp_path_factory.mktemp(f"ddp_{model}")
            # 6 batches an epoch: 3 per process
            run_cli(folder, "fit", *tiny_args(*DDP, batches_per_epoch(model, 6, processes=2), model=model))
            runs[model] = folder
        return runs[model]

    return folder_of


@pytest.fixture(params=list(TINY_MODELS))
def ddp_fit(request, ddp_fit_folder) -> tuple[str, Path]:
    return request.param, ddp_fit_folder(request.param)


@pytest.fixture(scope="session")
def single_process_validate():
    """(model, checkpoint) -> FID/KID/IS of `checkpoint` from `validate` in this process, on the held-out images the
    DDP runs used (each computed once per test session)."""
    results: dict[Path, dict[str, float]] = {}

    def validate(model: str, checkpoint: Path) -> dict[str, float]:
        if checkpoint not in results:
            results[checkpoint] = _validate(model, checkpoint)
        return results[checkpoint]

    return validate


def _validate(model: str, checkpoint: Path) -> dict[str, float]:
    """FID/KID/IS of `checkpoint` from `validate` in this process."""
    args = [f"--data.synthetic.test_size={N_HELD_OUT}", "--metrics.batch_size=1", "--trainer.logger=false"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the DDP processes (OMP_NUM_THREADS=1): the same arithmetic, bit for bit
    try:
        cli = main(["validate", *tiny_args(*args, f"--ckpt_path={checkpoint}", model=model)])
    finally:
        torch.set_num_threads(threads)
    metrics = next(c for c in cli.trainer.callbacks if isinstance(c, MetricsCallback))
    return {k: v for k, v in metrics.results.items() if not k.startswith("perf/")}


def test_ddp_fit_leaves_one_run_with_checkpoints_samples_and_val_metrics(ddp_fit):
    model, folder = ddp_fit
    (wandb_run,) = (folder / "runs" / "wandb").glob("offline-run-*")  # rank 0 only logs
    (run,) = (folder / "runs" / "lit_gan").iterdir()
    assert wandb_run.name.endswith(run.name)
    checkpoints = {p.name for p in (run / "checkpoints").glob("*.ckpt")}
    assert checkpoints == {"last.ckpt", "step0000003.ckpt", "best-step0000003.ckpt"}
    report = reports(folder, "fit")[0]
    grids = {p.name for p in (run / "samples").iterdir()}
    assert report["grids"] and grids == {f"step_0000003_{name}.png" for name in report["grids"]}  # one set, rank 0's
    media = sorted(p.name.split("_")[0] for p in (wandb_run / "files" / "media" / "images" / "samples").iterdir())
    assert media == report["grids"]
    assert report["train_losses"] and report["held_out_losses"]
    assert {"val/fid", "val/kid_mean", *report["train_losses"], *report["held_out_losses"]} <= set(report["logged"])


def test_ddp_fit_keeps_processes_in_sync_and_metrics_global(ddp_fit):
    model, folder = ddp_fit
    rank = reports(folder, "fit")
    assert rank[0]["first_batch"] != rank[1]["first_batch"]  # each process trains on its own share of the data
    if rank[0].get("phase_batch_size") is not None:  # a phase's minibatch is global: each process trains on half
        assert rank[0]["first_batch_size"] == rank[1]["first_batch_size"] == rank[0]["phase_batch_size"] // 2
    assert rank[0]["rng"] != rank[1]["rng"]  # and draws its own noise and dropout masks
    assert rank[0]["params"] != rank[0]["params_start"]  # it trained
    assert rank[0]["params"] == rank[1]["params"]  # with gradients averaged over both: the same networks
    if rank[0]["has_pools"]:
        assert rank[0]["pools"] != rank[1]["pools"]  # each process's image pools draw their own choices
    # FID/KID/IS and the validation metric: the same numbers on both processes.
    assert rank[0]["results"] and rank[0]["results"] == rank[1]["results"]
    for key in rank[0]["held_out_losses"]:
        assert rank[0]["logged"][key] == rank[1]["logged"][key]
    # Real images are encoded once, on rank 0; each process encodes its share of the generated ones (twice with an
    # EMA: the average's and the trained generator's, `metrics.raw_generators`).
    targets, generated, passes = rank[0]["targets_encoded"], rank[0]["sets_scored"], rank[0]["generators_scored"]
    assert rank[0]["encoded"] == targets * N_HELD_OUT + generated * passes * SHARDS[0]
    assert rank[1]["encoded"] == generated * passes * SHARDS[1]


def test_ddp_fit_metrics_equal_a_single_process_validate_of_its_checkpoint(ddp_fit, single_process_validate):
    model, folder = ddp_fit
    (checkpoint,) = (folder / "runs" / "lit_gan").glob("*/checkpoints/last.ckpt")
    single = single_process_validate(model, checkpoint)
    assert reports(folder, "fit")[0]["results"] == pytest.approx(single, rel=1e-6, abs=1e-9)


def test_ddp_validate_equals_single_process_validate(ddp_fit_folder, single_process_validate):
    folder = ddp_fit_folder("cyclegan")
    (checkpoint,) = (folder / "runs" / "lit_gan").glob("*/checkpoints/last.ckpt")
    run_cli(folder, "validate", *tiny_args(*DDP, f"--ckpt_path={checkpoint}", "--trainer.logger=false"))
    rank = reports(folder, "validate")
    assert rank[0]["results"] == rank[1]["results"]
    assert rank[0]["results"] == pytest.approx(single_process_validate("cyclegan", checkpoint), rel=1e-6, abs=1e-9)
