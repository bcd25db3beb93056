"""Progressive GAN (Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018): learn a style's image distribution from noise, growing both networks from 4x4 to the final
resolution one fading-in layer at a time."""

from typing import NamedTuple

import torch
from jsonargparse import lazy_instance
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn

from lit_gan.compat import sampler_epoch
from lit_gan.contracts import LatentGenerator, Phase
from lit_gan.losses import GeneratorStep, gan_loss
from lit_gan.losses.gan import GANLossName
from lit_gan.models.base import FromNoise, GANModule, SmokeTest
from lit_gan.models.defaults import model_defaults
from lit_gan.models.schedules import LRPolicy
from lit_gan.networks.progan import MIN_RESOLUTION, ProGANDiscriminator, ProGANGenerator, downscale, upscale


class ProGANAdam(torch.optim.Adam):
    """`torch.optim.Adam` with the official Progressive GAN settings: lr 0.001, betas (0, 0.99), eps 1e-8."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.0, 0.99), **kwargs) -> None:
        super().__init__(params, lr=lr, betas=betas, **kwargs)


class ProGANPreset(NamedTuple):
    """One of the official code's single-GPU training presets (tkarras/progressive_growing_of_gans, config.py)."""

    phase_images: int
    """Real images shown in each stabilisation phase and in each fade-in (lod_training_kimg, lod_transition_kimg)."""
    batch_sizes: dict[int, int]
    """The minibatch at each resolution: global, split over the processes (minibatch_base and minibatch_dict)."""
    mbstd_group_size: int
    """The discriminator's minibatch standard deviation group size."""
    resolution_lr: dict[int, float]
    """Learning rates other than 0.001 (G_lrate_dict and D_lrate_dict, equal)."""
    total_images: int
    """Real images of the whole run (total_kimg): after the last phase, the final resolution trains on."""


OFFICIAL_PRESETS = {
    "v1": ProGANPreset(  # "preset-v1-1gpu", the paper's (Appendix A.1)
        phase_images=800_000,
        batch_sizes={4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 16, 256: 14, 512: 6, 1024: 3},
        mbstd_group_size=16,
        resolution_lr={},
        total_images=19_000_000,
    ),
    "v2": ProGANPreset(  # "preset-v2-1gpu", the TensorFlow release's default
        phase_images=600_000,
        batch_sizes={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4},
        mbstd_group_size=4,
        resolution_lr={1024: 0.0015},
        total_images=12_000_000,
    ),
}
"""The official presets by name: "v1" (the paper's, `configs/models/progan_v1.yaml`) and "v2" (the TensorFlow code's
default, `configs/models/progan_v2.yaml`). Both are for 1024 px CelebA-HQ; at a lower final resolution the tables
above it are unused. Their `total_images` train the final resolution 6-12x longer than its single stabilisation
phase: see `extra_epochs`."""


def extra_epochs(preset: ProGANPreset, image_size: int, start_resolution: int = MIN_RESOLUTION) -> int:
    """Epochs (of `phase_images` each) after the last phase that bring a run at `image_size` to the preset's
    `total_images`, as the official run trains on at its final resolution until total_kimg."""
    phases = 1 + 2 * (image_size.bit_length() - start_resolution.bit_length())
    return max(0, -(-(preset.total_images - phases * preset.phase_images) // preset.phase_images))


@model_defaults(lr=1e-3, optimizer_G=ProGANAdam, optimizer_D=ProGANAdam, ema_decay=0.999)
class ProGAN(FromNoise, GANModule):
    """A generator growing from `start_resolution` to its `image_size`, and a discriminator growing with it, trained
    on the data module's "A" images (`data.mode: single`) as the official code trains them.

    Phases: the first epoch stabilises `start_resolution`; then each resolution takes two epochs, a fade-in
    (`fade_images` images, during which the new layers' weight alpha rises linearly from 0 to 1 with the images
    seen, in both networks and in the real images, which are blended with their 2x box-downscaled and upscaled
    version) and a stabilisation (`phase_images` images). Epochs after the last phase stabilise the final
    resolution; `trainer.max_epochs` of 2 * log2(image_size / start_resolution) + 1 reaches it once. In each phase
    the data module serves the training images box-downscaled to the phase's resolution, in batches of
    `batch_sizes[resolution]`, reloading its loader at every epoch. Adam's state is reset at every phase change, as
    the official `reset_opt_for_new_lod`.

    Per iteration: one step of the critic on a real batch and fakes from fresh latents, WGAN-GP (lambda 10) plus the
    drift term 0.001 * E[D(real)^2] (`gan_mode: wgangp_drift`), then one step of the generator on new fakes (-D).
    The official critic sees every resolution upscaled to the final one (and box-downscales it again), so its gradient
    penalty is taken with respect to full-resolution images; here the critic runs on the r x r images and the
    penalty is the official one, computed from the r x r gradient (its norm divided by image_size / r:
    `lit_gan.losses.gan.gradient_penalty`). The critic's scores, hence the drift term, are the official ones.
    The generator's EMA (decay 0.999) makes the samples and the metrics. Logged: `train/G`, `train/D`,
    `train/alpha`, `train/resolution`, `train/images_seen` (images of the run so far), and `val/D_real`. Sample
    grids show fixed latents, upscaled (nearest) to `image_size` at every resolution. FID/KID compare the
    generated images with the held-out images box-downscaled to the current resolution.

    Left out of the official code: its learning-rate and tick schedules per resolution (it uses the same rate at
    every resolution by default) and its updating of alpha every 4 minibatches (here: every minibatch).

    Args:
        generator: a `ProGANGenerator` (`nz`, `image_size`, `grow_to`).
        discriminator: a `ProGANDiscriminator` of the same `image_size`.
        gan_mode: adversarial loss: the paper's "wgangp_drift".
        start_resolution: the resolution of the first phase (the paper: 4).
        phase_images: training images of each stabilisation phase (the paper: 800k); null: one pass over the
            training images.
        fade_images: training images of each fade-in phase; null: `phase_images`.
        batch_sizes: images per batch at each resolution, over all processes as the official minibatch: each of W
            processes trains on batch_sizes[r] // W of them (the official code rounds down alike); a resolution not
            listed uses `data.batch_size` per process. The official presets: `OFFICIAL_PRESETS`.
        resolution_images: training images of each phase at a resolution (its fade-in and its stabilisation),
            overriding `phase_images` and `fade_images` there, e.g. more for the cheap low resolutions of a short run.
        resolution_lr: learning rate of both networks at these resolutions (their phases and fade-ins), instead of
            the optimizers' own (the official G_lrate_dict/D_lrate_dict; preset v2: 0.0015 at 1024 px). Applied
            to the schedulers' base rates, so an `lr_policy` decay still scales it.
        sample_grid: the fixed-latent sample grid is sample_grid x sample_grid images.
    """

    default_lr_policy = LRPolicy("constant", n_epochs_decay=0)
    smoke_test = SmokeTest(
        model={
            "generator": {
                "class_path": "lit_gan.networks.ProGANGenerator",
                "init_args": {"nz": 8, "image_size": 32, "fmap_base": 32, "fmap_max": 8},
            },
            "discriminator": {
                "class_path": "lit_gan.networks.ProGANDiscriminator",
                "init_args": {"image_size": 32, "fmap_base": 32, "fmap_max": 8},
            },
            "phase_images": None,
            "batch_sizes": {4: 2, 8: 2, 16: 2, 32: 2},  # global: 1 per process in the 2-process test
            "sample_grid": 2,
        },
        data={"mode": "single", "batch_size": 2},
    )

    def __init__(
        self,
        generator: nn.Module = lazy_instance(ProGANGenerator),
        discriminator: nn.Module = lazy_instance(ProGANDiscriminator),
        gan_mode: GANLossName = "wgangp_drift",
        start_resolution: int = MIN_RESOLUTION,
        phase_images: int | None = 800_000,
        fade_images: int | None = None,
        batch_sizes: dict[int, int] | None = None,
        resolution_images: dict[int, int] | None = None,
        resolution_lr: dict[int, float] | None = None,
        sample_grid: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if sample_grid < 1:
            raise ValueError(f"model.sample_grid must be >= 1, got {sample_grid}")
        self.add_networks({"samples": generator}, {"A": discriminator})
        _check_pair(self.G, self.D)  # after add_networks: a lazy_instance has its attributes only once built
        self.nz: int = self.G.nz
        self.image_size: int = self.G.image_size
        # keys as numbers: from the command line or a checkpoint's hyperparameters they may come as strings
        self.batch_sizes = {int(res): int(size) for res, size in (batch_sizes or {}).items()}
        self.resolution_images = {int(res): int(n) for res, n in (resolution_images or {}).items()}
        self._check_schedule(self.image_size, start_resolution, phase_images, fade_images, self.batch_sizes)
        self._check_schedule(self.image_size, start_resolution, None, None, self.resolution_images, "resolution_images")
        self.resolution_lr = {int(res): float(lr) for res, lr in (resolution_lr or {}).items()}
        self._check_schedule(self.image_size, start_resolution, None, None, self.resolution_lr, "resolution_lr")
        self.gan_loss = gan_loss(gan_mode)
        rng = torch.Generator().manual_seed(torch.initial_seed())  # the run's seed: the same grids on resume
        self.register_buffer("fixed_noise", torch.randn(sample_grid**2, self.nz, generator=rng))
        self.register_buffer("growth", torch.tensor([float(start_resolution), 1.0]))  # (resolution, alpha), saved
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))  # training images of the run so far
        self._optimizer_phase: int | None = None  # the phase Adam's moments belong to (None: none yet)
        self._grow(start_resolution, 1.0)

    @staticmethod
    def _check_schedule(
        image_size: int,
        start: int,
        phase_images: int | None,
        fade_images: int | None,
        per_resolution: dict[int, int],
        key: str = "batch_sizes",
    ) -> None:
        if start < MIN_RESOLUTION or start & (start - 1) or start > image_size:
            raise ValueError(
                f"model.start_resolution must be a power of two from {MIN_RESOLUTION} to the generator's image_size "
                f"{image_size}, got {start}"
            )
        for name, value in (("phase_images", phase_images), ("fade_images", fade_images)):
            if value is not None and value < 1:
                raise ValueError(f"model.{name} must be >= 1 (or null: one pass over the training images), got {value}")
        least = 0 if key == "resolution_lr" else 1  # a learning rate > 0; a number of images or batch size >= 1
        bad = {res: n for res, n in per_resolution.items() if n <= 0 or n < least or res < 4 or res & (res - 1)}
        if bad:
            what = "learning rates > 0" if key == "resolution_lr" else "numbers >= 1"
            raise ValueError(f"model.{key} maps resolutions (powers of two) to {what}; got {bad}")

    # -- the phase schedule -------------------------------------------------------------------------------------

    @property
    def num_phases(self) -> int:
        """Phases until the final resolution is stabilised: 1 + 2 per doubling after `start_resolution`."""
        return 1 + 2 * (self.image_size.bit_length() - self.hparams.start_resolution.bit_length())

    def training_phase(self, epoch: int) -> Phase:
        """The phase of `epoch`: 0 stabilises `start_resolution`, then odd epochs fade in the next resolution and
        even ones stabilise it; epochs after the last phase stabilise `image_size`."""
        hp = self.hparams
        k = min(epoch, self.num_phases - 1)
        resolution = hp.start_resolution * 2 ** ((k + 1) // 2)
        fade = k % 2 == 1
        images = (hp.fade_images or hp.phase_images) if fade else hp.phase_images
        images = self.resolution_images.get(resolution, images)
        return Phase(resolution, self.batch_sizes.get(resolution), images, fade)

    @property
    def resolution(self) -> int:
        """The resolution the generator makes images at now."""
        return self.translator("samples").resolution

    @property
    def alpha(self) -> float:
        """The newest layers' weight while they fade in (1 once they are in)."""
        return self.translator("samples").alpha

    def _grow(self, resolution: int, alpha: float) -> None:
        """Put the networks (and the EMA generator) at `resolution` with fade-in weight `alpha`; kept in `growth`
        for checkpoints."""
        for net in (self.G, self.D, self.translator("samples")):
            net.grow_to(resolution, alpha)
        self.growth[0], self.growth[1] = float(resolution), alpha  # fills on the device: no host sync

    @property
    def phase_epoch(self) -> int:
        """The epoch whose phase is being trained: the one the data module's loader serves (`compat.sampler_epoch`;
        not `current_epoch` after resuming a run that stopped at max_steps mid-epoch)."""
        return sampler_epoch(self.trainer)

    def _schedule_step(self, batch_idx: int, done: bool = False) -> Phase:
        """Grow the networks to where the schedule is at `batch_idx` of this epoch (after it, when `done`)."""
        phase = self.training_phase(self.phase_epoch)
        alpha = 1.0
        if phase.fade:
            alpha = min(1.0, (batch_idx + done) / max(1, self.trainer.num_training_batches))
        self._grow(phase.resolution, alpha)
        return phase

    # -- training -------------------------------------------------------------------------------------------------

    def _enter_phase(self, epoch: int) -> Phase:
        """The phase of `epoch`; on its first step, Adam's state is reset (the official `reset_opt_for_new_lod`: fresh
        moments at every phase change). Done here rather than in `on_train_epoch_start`, which a run resumed from an
        epoch's last batch skips; `_optimizer_phase` (which phase the moments belong to) is in the checkpoints."""
        phase = self.training_phase(epoch)
        index = min(epoch, self.num_phases - 1)
        if self._optimizer_phase != index:
            if self._optimizer_phase is not None:
                for opt in self.optimizers():
                    opt.optimizer.state.clear()
            self._optimizer_phase = index
            self._set_resolution_lr(phase.resolution)
            what = "fading in" if phase.fade else "stabilising"
            rank_zero_info(f"ProGAN phase {index} (epoch {epoch}): {what} {phase.resolution}x{phase.resolution}")
        return phase

    def _set_resolution_lr(self, resolution: int) -> None:
        """Both optimizers' rate at `resolution`: `resolution_lr`'s, else their own (`initial_lr`, which their
        schedulers keep in the checkpoints). Set as the schedulers' base rate, scaling the rate now in the same
        ratio, so a policy's decay still applies; a scheduler without base rates (plateau) gets the rate itself."""
        if not self.resolution_lr:
            return
        schedulers = self.lr_schedulers() or []
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        for i, opt in enumerate(self.optimizers()):
            scheduler = schedulers[i] if i < len(schedulers) else None
            base_lrs = getattr(scheduler, "base_lrs", None)
            for j, group in enumerate(opt.optimizer.param_groups):
                target = self.resolution_lr.get(resolution, group.get("initial_lr", group["lr"]))
                if base_lrs is None:
                    group["lr"] = target
                    continue
                group["lr"] = group["lr"] * target / base_lrs[j] if base_lrs[j] else target
                base_lrs[j] = target

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        real = batch["A"]  # (B, C, r, r) at the phase's resolution
        self._enter_phase(self.phase_epoch)
        phase = self._schedule_step(batch_idx)
        if real.shape[-1] != phase.resolution or real.shape[-2] != phase.resolution:
            raise ValueError(
                f"ProGAN's phase {self.phase_epoch} trains at {phase.resolution}x{phase.resolution}, but the batch "
                f"holds {real.shape[-2]}x{real.shape[-1]} images: use lit_gan's StyleDataModule (it serves each "
                "phase's resolution)"
            )
        if phase.fade and self.alpha < 1.0:  # the official FadeLOD of the reals
            real = torch.lerp(upscale(downscale(real)), real, self.alpha)
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        fake = self.G(torch.randn(n, self.nz, device=self.device, dtype=real.dtype))
        # WGAN-GP + drift: D(fake) - D(real) + penalties, the gradient penalty w.r.t. the full-resolution images
        downscaled = self.image_size // phase.resolution
        d_loss = self.discriminator_loss(self.D, real, fake, downscaled=downscaled)
        self.step_discriminator(opt_d, d_loss)

        with self.frozen(self.discriminators):
            fake = self.G(torch.randn(n, self.nz, device=self.device, dtype=real.dtype))  # new latents, as official
            step = GeneratorStep(fake, real, None, self.D, d_fake=fake, d_real=real, paired=False)
            g_losses = self.generator_losses_against(step, "G")
            self.step_generator(opt_g, sum(g_losses.values()))

        self.seen += n * self.trainer.world_size
        progress = {
            "alpha": torch.tensor(self.alpha),
            "resolution": torch.tensor(float(phase.resolution)),
            "images_seen": self.seen.float(),
        }
        self.log_losses({**g_losses, "D": d_loss, **progress}, batch_size=n)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self._schedule_step(batch_idx, done=True)  # samples and metrics after this step see its alpha

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["progan_optimizer_phase"] = self._optimizer_phase

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._optimizer_phase = checkpoint.get("progan_optimizer_phase")
        growth = checkpoint.get("state_dict", {}).get("growth")
        if growth is not None:  # export, predict and notebooks use the checkpoint's resolution
            self._grow(int(growth[0]), float(growth[1]))

    # -- evaluation, samples, generation --------------------------------------------------------------------------

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The critic's loss on held-out real images at the current resolution (rising while `train/D` falls: it is
        memorising the training images)."""
        real = downscale(batch["A"], batch["A"].shape[-1] // self.D.resolution)
        return {"D_real": self.gan_loss.real(self.D(real))}

    def sample_images(self, batch: dict[str, Tensor] | None = None) -> dict[str, list[Tensor]]:
        """Grid columns: "samples" from the fixed latents at the current resolution, upscaled (nearest) to
        `image_size`, each (N, C, image_size, image_size); `batch` is not needed."""
        G, grid = self.translator("samples"), self.hparams.sample_grid
        samples = upscale(G(self.fixed_noise), self.image_size // G.resolution)  # (grid^2, C, S, S)
        return {"samples": [samples[c::grid] for c in range(grid)]}


def _check_pair(generator: nn.Module, discriminator: nn.Module) -> None:
    """Fail early, naming the config key, if the networks cannot grow together."""
    for key, net in (("generator", generator), ("discriminator", discriminator)):
        if not callable(getattr(net, "grow_to", None)):
            raise ValueError(
                f"model.{key} must be a growing network with grow_to(resolution, alpha) "
                f"(lit_gan.networks.ProGAN{key.capitalize()}), got {type(net).__name__}"
            )
    if not isinstance(generator, LatentGenerator):
        raise ValueError("model.generator must be a noise -> image network with `nz` and `image_size` attributes")
    if generator.image_size != discriminator.image_size:
        raise ValueError(
            f"model.discriminator.image_size ({discriminator.image_size}) differs from model.generator.image_size "
            f"({generator.image_size})"
        )
