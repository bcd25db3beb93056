"""The Progressive GAN model: its phase schedule, the data it trains on in each phase, WGAN-GP with the drift term, the
optimizer resets, what it logs, its sample grids and metrics at each resolution. (Exact resume, mid-fade included:
tests/test_resume_boundaries.py; export, precision, DDP: the other tests generated from the model catalogue.)"""

import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from pytorch_lightning.callbacks import Callback

import lit_gan.losses.gan as gan_losses
from lit_gan.contracts import Phase, TrainsInPhases
from lit_gan.data.datasets import Downscaled, box_downscale
from lit_gan.losses.gan import gradient_penalty
from lit_gan.models import ProGAN
from lit_gan.models.loading import load_checkpoint
from lit_gan.models.progan import OFFICIAL_PRESETS, extra_epochs
from lit_gan.networks import ProGANDiscriminator, ProGANGenerator
from tests.helpers import TinyExtractor, fit, tiny_args

NETS = {"fmap_base": 32, "fmap_max": 8}
REPO = Path(__file__).resolve().parents[2]


def tiny_progan(image_size: int = 32, **kwargs) -> ProGAN:
    torch.manual_seed(0)
    return ProGAN(
        generator=ProGANGenerator(nz=8, image_size=image_size, **NETS),
        discriminator=ProGANDiscriminator(image_size=image_size, **NETS),
        **{"sample_grid": 2, **kwargs},
    )


def test_phases_stabilise_then_fade_in_each_resolution_with_its_batch_size():
    model = tiny_progan(phase_images=600, fade_images=400, batch_sizes=OFFICIAL_PRESETS["v2"].batch_sizes)
    assert isinstance(model, TrainsInPhases) and model.num_phases == 7
    phases = [model.training_phase(epoch) for epoch in range(9)]
    assert phases == [
        Phase(4, 128, 600, False),
        Phase(8, 128, 400, True),
        Phase(8, 128, 600, False),
        Phase(16, 128, 400, True),
        Phase(16, 128, 600, False),
        Phase(32, 64, 400, True),
        Phase(32, 64, 600, False),
        Phase(32, 64, 600, False),  # after the last phase: the final resolution, stabilising
        Phase(32, 64, 600, False),
    ]
    overridden = tiny_progan(phase_images=600, resolution_images={4: 5000, 16: 900})
    assert [overridden.training_phase(e).images for e in range(7)] == [5000, 600, 600, 900, 900, 600, 600]
    later = tiny_progan(start_resolution=16, phase_images=None)
    assert [later.training_phase(e) for e in range(3)] == [
        Phase(16, None, None, False),
        Phase(32, None, None, True),
        Phase(32, None, None, False),
    ]


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_the_official_presets_are_the_config_files(name):
    """`configs/models/progan_v1.yaml` and `configs/models/progan.yaml` (v2) hold `OFFICIAL_PRESETS`' values, and the
    configs say how many epochs give the official run's length."""
    preset = OFFICIAL_PRESETS[name]
    file = REPO / "configs" / "models" / ("progan.yaml" if name == "v2" else "progan_v1.yaml")
    given = yaml.safe_load(file.read_text())["init_args"]
    assert given["phase_images"] == preset.phase_images and given["fade_images"] is None
    assert given["batch_sizes"] == preset.batch_sizes and given["resolution_lr"] == preset.resolution_lr
    assert given["discriminator"]["init_args"]["mbstd_group_size"] == preset.mbstd_group_size
    config = yaml.safe_load((REPO / "configs" / ("progan.yaml" if name == "v2" else "progan_v1.yaml")).read_text())
    assert config["model"] == f"models/{file.name}"
    official = 13 + extra_epochs(preset, 256)
    assert (
        f"max_epochs: 13  # one epoch per phase; {official} for the official"
        in (file.parents[1] / file.name).read_text()
    )
    assert official == {"v1": 24, "v2": 20}[name]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_resolution": 6}, "model.start_resolution must be a power of two from 4"),
        ({"start_resolution": 64}, "model.start_resolution"),
        ({"phase_images": 0}, "model.phase_images must be >= 1"),
        ({"batch_sizes": {12: 4}}, "model.batch_sizes"),
        ({"resolution_images": {8: 0}}, "model.resolution_images"),
        ({"resolution_lr": {8: 0.0}}, "model.resolution_lr maps resolutions \\(powers of two\\) to learning rates > 0"),
        ({"sample_grid": 0}, "model.sample_grid"),
    ],
)
def test_bad_settings_name_the_config_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_progan(**kwargs)


def test_networks_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="model.discriminator.image_size \\(16\\) differs"):
        ProGAN(
            generator=ProGANGenerator(nz=8, image_size=32, **NETS),
            discriminator=ProGANDiscriminator(image_size=16, **NETS),
        )


def test_the_critics_loss_is_wgan_gp_with_the_drift_term_and_both_reach_its_gradients():
    model = tiny_progan()
    D, real, fake = model.D, torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:  # of the layers in use at 4x4
        D.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad.clone() for p in D.parameters() if p.grad is not None]

    torch.manual_seed(1)
    actual = grads(model.discriminator_loss(D, real, fake))
    torch.manual_seed(1)  # the same interpolates for the penalty
    d_real = D(real)
    direct = D(fake).mean() - d_real.mean() + 0.001 * (d_real**2).mean() + 10 * gradient_penalty(D, real, fake)
    for a, b in zip(actual, grads(direct), strict=True):
        torch.testing.assert_close(a, b)
    plain = grads(D(fake).mean() - D(real).mean())
    torch.manual_seed(1)
    gp_only = grads(D(fake).mean() - D(real).mean() + 10 * gradient_penalty(D, real, fake))
    assert any(not torch.allclose(a, b) for a, b in zip(plain, gp_only, strict=True))  # the penalty reaches them
    drift_only = grads(D(fake).mean() - D(real).mean() + 0.001 * (D(real) ** 2).mean())
    assert any(not torch.allclose(a, b) for a, b in zip(plain, drift_only, strict=True))  # and so does the drift


def test_the_critics_penalty_is_the_official_one_on_full_resolution_images():
    """At 8 px of a 32 px run, the official critic sees the 8 px images nearest-upscaled to 32 px and box-downscales
    them again: its loss (WGAN-GP on those 32 px images, drift) and gradients equal lit_gan's on the 8 px images."""
    model = tiny_progan()
    model._grow(8, 1.0)
    D, real, fake = model.D, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)

    def official_critic(x):  # (B, 3, 32, 32)
        return D(F.avg_pool2d(x, 4))

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        D.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad.clone() for p in D.parameters() if p.grad is not None]

    torch.manual_seed(1)
    ours = model.discriminator_loss(D, real, fake, downscaled=4)
    ours_grads = grads(ours)
    up = functools.partial(F.interpolate, scale_factor=4, mode="nearest")
    d_real = official_critic(up(real))
    torch.manual_seed(1)
    penalty = gradient_penalty(official_critic, up(real), up(fake))
    official = official_critic(up(fake)).mean() - d_real.mean() + 0.001 * (d_real**2).mean() + 10 * penalty
    torch.testing.assert_close(ours, official)
    for a, b in zip(ours_grads, grads(official), strict=True):
        torch.testing.assert_close(a, b)
    torch.manual_seed(1)
    assert not torch.allclose(model.discriminator_loss(D, real, fake), ours)  # the r x r penalty is another one


def test_downscaled_items_are_box_filtered():
    image = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4)
    item = Downscaled([{"A": image, "A_path": "x.png"}], 2)[0]
    expected = torch.tensor([[2.5, 4.5], [10.5, 12.5]])
    torch.testing.assert_close(item["A"][0], expected)
    assert item["A_path"] == "x.png"
    torch.testing.assert_close(box_downscale(image[None], 4), image.mean(dim=(1, 2)).reshape(1, 2, 1, 1))


class PhaseRecorder(Callback):
    """Per training step: the epoch, the batch's shape, the model's alpha and resolution, and Adam's step count of the
    generator's first parameter after the step."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.penalty_factors: list[tuple[int, int]] = []  # (image side, downscaled) of each gradient penalty

    def recording(self, penalty):
        def record(discriminator, real, fake, downscaled=1):
            self.penalty_factors.append((real.shape[-1], downscaled))
            return penalty(discriminator, real, fake, downscaled)

        return record

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        opt_g = pl_module.optimizers()[0].optimizer
        state = opt_g.state[next(iter(pl_module.G.parameters()))]
        self.steps.append(
            {
                "epoch": trainer.current_epoch,
                "shape": tuple(batch["A"].shape),
                "alpha": pl_module.alpha,
                "resolution": pl_module.resolution,
                "adam_step": int(state["step"]),
                "lr": [group["lr"] for opt in pl_module.optimizers() for group in opt.optimizer.param_groups],
                "batches": trainer.num_training_batches,
            }
        )


class SizeRecordingExtractor(TinyExtractor):
    """TinyExtractor that also records the image sizes it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor):
        self.sizes.append(x.shape[-1])
        return super().forward(x)


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A tiny ProGAN grown 4 -> 8 -> 16 -> 32 (7 phases) with each phase's batch size and images, grids every phase."""
    folder = tmp_path_factory.mktemp("progan")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("WANDB_DIR", str(folder))
        mp.setenv("LIT_GAN_CACHE", str(folder / "cache"))
        recorder = PhaseRecorder()
        mp.setattr(gan_losses, "gradient_penalty", recorder.recording(gan_losses.gradient_penalty))
        args = tiny_args(
            "--trainer.max_epochs=7",
            "--model.phase_images=8",
            "--model.fade_images=6",
            "--model.batch_sizes={4: 4, 8: 4, 16: 2, 32: 2}",
            "--model.resolution_lr={16: 0.002}",
            "--samples.every_n_epochs=1",
            "--samples.every_n_steps=0",
            "--metrics.every_n_epochs=2",
            "--metrics.feature_extractor=tests.models.test_progan.SizeRecordingExtractor",
            "--data.synthetic.test_size=4",
            model="progan",
        )
        cli = fit(args, callbacks=[recorder])
    return cli, recorder, folder


def test_each_phase_trains_on_its_resolution_batch_size_and_number_of_images(grown):
    cli, recorder, _ = grown
    by_epoch: dict[int, list[dict]] = {}
    for step in recorder.steps:
        by_epoch.setdefault(step["epoch"], []).append(step)
    expected = {0: (4, 4, 2), 1: (8, 4, 2), 2: (8, 4, 2), 3: (16, 2, 3), 4: (16, 2, 4), 5: (32, 2, 3), 6: (32, 2, 4)}
    for epoch, (resolution, batch_size, batches) in expected.items():
        steps = by_epoch[epoch]
        assert len(steps) == batches, epoch  # phase_images 8 (fade_images 6) in whole batches
        assert {s["shape"] for s in steps} == {(batch_size, 3, resolution, resolution)}, epoch
        assert {s["resolution"] for s in steps} == {resolution}, epoch
    assert cli.trainer.global_step == sum(b for _, _, b in expected.values())
    assert cli.model.resolution == 32 and cli.model.alpha == 1.0
    assert float(cli.model.seen) == 8 + 8 + 8 + 6 + 8 + 6 + 8


def test_every_phase_takes_the_penalty_on_full_resolution_images(grown):
    _, recorder, _ = grown
    assert len(recorder.penalty_factors) == len(recorder.steps)
    assert set(recorder.penalty_factors) == {(4, 8), (8, 4), (16, 2), (32, 1)}


def test_alpha_rises_linearly_with_the_images_of_a_fade_in(grown):
    _, recorder, _ = grown
    fade = [s for s in recorder.steps if s["epoch"] == 5]  # 3 batches: alpha 0, 1/3, 2/3 during its steps
    assert [s["alpha"] for s in fade] == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert {s["alpha"] for s in recorder.steps if s["epoch"] in (0, 2, 4, 6)} == {1.0}


def test_adams_state_is_reset_at_every_phase_change(grown):
    _, recorder, _ = grown
    per_epoch: dict[int, list[int]] = {}
    for s in recorder.steps:
        per_epoch.setdefault(s["epoch"], []).append(s["adam_step"])
    assert len(per_epoch) == 7  # Adam counts from 1 again in every phase
    assert all(steps == list(range(1, len(steps) + 1)) for steps in per_epoch.values()), per_epoch


def test_resolution_lr_holds_in_the_phases_of_its_resolution(grown):
    _, recorder, _ = grown
    lrs = {s["epoch"]: s["lr"] for s in recorder.steps}
    assert {e: lr for e, lr in lrs.items() if e in (3, 4)} == {3: [0.002, 0.002], 4: [0.002, 0.002]}
    assert all(lr == [0.001, 0.001] for e, lr in lrs.items() if e not in (3, 4))  # back to the optimizers' own


def test_logs_alpha_resolution_and_images_seen(grown):
    cli, _, _ = grown
    logged = cli.trainer.callback_metrics
    assert float(logged["train/alpha"]) == 1.0 and float(logged["train/resolution"]) == 32
    assert float(logged["train/images_seen"]) == float(cli.model.seen)
    assert "val/D_real" in logged and "val/fid" in logged


def test_sample_grids_every_phase_share_one_display_size(grown):
    _, _, folder = grown
    grids = sorted(folder.rglob("samples/step_*_samples.png"))
    assert len(grids) == 7  # one per phase (the end of training writes the last one again)
    assert len({Image.open(p).size for p in grids}) == 1  # 2 x 2 images of 32 px at every resolution


def test_metrics_compare_images_at_the_current_resolution(grown):
    cli, _, _ = grown
    extractor = next(c for c in cli.trainer.callbacks if hasattr(c, "extractor")).extractor
    # every other epoch (1, 3, 5: the ends of the fade-ins of 8, 16 and 32 px) and the last: reals and fakes alike
    assert set(extractor.sizes) == {8, 16, 32}


def test_the_final_checkpoint_loads_at_the_final_resolution(grown):
    cli, _, _ = grown
    model, _ = load_checkpoint(Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt")
    assert (model.resolution, model.alpha) == (32, 1.0)
    images = model.generate("samples", torch.arange(3))
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1
