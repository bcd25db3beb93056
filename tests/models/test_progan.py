"""The Progressive GAN model: its phase schedule, the data it trains on in each phase, WGAN-GP with the drift term, the
optimizer resets, what it logs, its sample grids and metrics at each resolution. (Exact resume, mid-fade included:
tests/test_resume_boundaries.py; export, precision, DDP: the other tests generated from the model catalogue.)"""

from pathlib import Path

import pytest
import torch
from PIL import Image
from pytorch_lightning.callbacks import Callback

from lit_gan.contracts import Phase, TrainsInPhases
from lit_gan.data.datasets import Downscaled, box_downscale
from lit_gan.losses.gan import gradient_penalty
from lit_gan.models import ProGAN
from lit_gan.models.loading import load_checkpoint
from lit_gan.models.progan import PAPER_BATCH_SIZES
from lit_gan.networks import ProGANDiscriminator, ProGANGenerator
from tests.helpers import TinyExtractor, fit, tiny_args

NETS = {"fmap_base": 32, "fmap_max": 8}


def tiny_progan(image_size: int = 32, **kwargs) -> ProGAN:
    torch.manual_seed(0)
    return ProGAN(
        generator=ProGANGenerator(nz=8, image_size=image_size, **NETS),
        discriminator=ProGANDiscriminator(image_size=image_size, **NETS),
        **{"sample_grid": 2, **kwargs},
    )


def test_phases_stabilise_then_fade_in_each_resolution_with_its_batch_size():
    model = tiny_progan(phase_images=600, fade_images=400, batch_sizes=PAPER_BATCH_SIZES)
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_resolution": 6}, "model.start_resolution must be a power of two from 4"),
        ({"start_resolution": 64}, "model.start_resolution"),
        ({"phase_images": 0}, "model.phase_images must be >= 1"),
        ({"batch_sizes": {12: 4}}, "model.batch_sizes"),
        ({"resolution_images": {8: 0}}, "model.resolution_images"),
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
        args = tiny_args(
            "--trainer.max_epochs=7",
            "--model.phase_images=8",
            "--model.fade_images=6",
            "--model.batch_sizes={4: 4, 8: 4, 16: 2, 32: 2}",
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
