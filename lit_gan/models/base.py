"""`GANModule`: what every GAN LightningModule here shares (manual optimization, Adam pairs, LR policies, EMA)."""

import inspect
import warnings
from collections.abc import Iterable

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lit_gan import compat
from lit_gan.data.predict import crop_padding
from lit_gan.distributed import broadcast_buffers, gather_from_ranks
from lit_gan.image_pool import ImagePool
from lit_gan.models.rank_state import rng_states, set_rng_states
from lit_gan.models.schedules import LRSchedule, build_scheduler
from lit_gan.resume import count_epoch_started_after_last_batch, epoch_end_as_last_batch


class GANModule(pl.LightningModule):
    """Base of the GAN LightningModules: training logic shared by CycleGAN, pix2pix and DCGAN.

    Subclasses save hyperparameters with at least `lr`, `betas`, `lr_policy`, `n_epochs`, `n_epochs_decay`,
    `lr_step_epochs` and `ema_decay`, build their networks, call `init_ema(...)` with the names of their generators,
    and implement `training_step` with `step_generator`/`step_discriminator`.

    `global_step` counts iterations: the generator's optimizer step is counted, the discriminator's is not (it is
    still run through the strategy, so precision plugins and DDP apply).

    Checkpoints also hold, per process, the random generators and the image pools (attributes that are `ImagePool`s),
    so a resumed run continues exactly; each process's pools draw from their own seed.
    """

    val_metric: str | None = None
    """Validation metric the "plateau" LR policy monitors (lower is better)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.ema: nn.ModuleDict | None = None
        self.step_losses: dict[str, Tensor] = {}  # the last training step's loss terms, for callbacks
        self.adam_options: dict = {}  # Adam's implementation, e.g. {"fused": True}: torch's default when empty
        self._pools_restored = False
        self._rng_to_restore: dict | None = None

    def save_config(self, *networks: str) -> None:
        """Save the constructor's arguments as hyperparameters (call it first thing in `__init__`).

        Built by the CLI, the `networks` arguments are saved as their configs (class path and init args), so that
        `load_from_checkpoint(path)` rebuilds the whole model. Built in Python, they are network objects and are left
        out (their weights are in the state dict): pass them again to `load_from_checkpoint(path, generator=...)`.
        """
        frame = inspect.currentframe().f_back
        from_cli = compat.hyperparameters_given_by_cli()  # LightningCLI passes the parsed config
        self.save_hyperparameters(ignore=None if from_cli else list(networks), frame=frame, logger=False)

    # -- optimizers and learning rates ----------------------------------------------------------------------------

    def adam_pair(self, g_params, d_params):
        """One Adam over the generators' and one over the discriminators' parameters, with their schedulers."""
        hp = self.hparams
        impl = self.adam_options  # fused, foreach... (set by the `speed` options)
        opt_g = torch.optim.Adam(list(g_params), lr=hp.lr, betas=tuple(hp.betas), **impl)
        opt_d = torch.optim.Adam(list(d_params), lr=hp.lr, betas=tuple(hp.betas), **impl)
        if hp.lr_policy == "plateau" and self.val_metric is None:
            raise ValueError(f"lr_policy 'plateau' needs a validation metric, which {type(self).__name__} lacks")
        schedule = LRSchedule(hp.lr_policy, hp.n_epochs, hp.n_epochs_decay, hp.lr_step_epochs)
        return [opt_g, opt_d], [build_scheduler(opt, schedule) for opt in (opt_g, opt_d)]

    def on_train_epoch_start(self) -> None:
        self._schedules_to_current_epoch()

    def _schedules_to_current_epoch(self) -> None:
        """Bring the per-epoch schedules to the current epoch. Doing it at epoch start (and at train start: a run
        resumed from an epoch's last batch begins the next epoch without `on_train_epoch_start`) rather than at epoch
        end keeps them right when an epoch is cut short by max_steps and resumed from a checkpoint."""
        for scheduler in self.lr_schedulers() or []:
            if isinstance(scheduler, ReduceLROnPlateau):
                continue  # stepped with its metric after validation
            while scheduler.last_epoch < self.current_epoch:
                scheduler.step()

    def on_validation_epoch_end(self) -> None:
        fitting = self.trainer.state.fn == TrainerFn.FITTING
        if self.hparams.lr_policy != "plateau" or self.trainer.sanity_checking or not fitting:
            return
        value = self.trainer.callback_metrics.get(self.val_metric)
        if value is None:
            raise RuntimeError(f"lr_policy 'plateau' monitors {self.val_metric!r}, which was not logged")
        for scheduler in self.lr_schedulers():
            scheduler.step(float(value))

    def learning_rates(self) -> dict[str, float]:
        """The current learning rates, for logging: {"train/lr_G", "train/lr_D"}."""
        opt_g, opt_d = self.optimizers()
        return {"train/lr_G": opt_g.param_groups[0]["lr"], "train/lr_D": opt_d.param_groups[0]["lr"]}

    def log_losses(self, losses: dict[str, Tensor], batch_size: int) -> None:
        """Log a training step's loss terms as `train/<name>` with the learning rates, and keep them (detached) in
        `step_losses` for callbacks such as the divergence guard.

        Only on the steps Lightning writes to the loggers (`trainer.log_every_n_steps`): each `self.log` costs about
        1 ms of host time (Lightning moves a result object per key), which on the other steps would buy nothing but a
        fresher `trainer.callback_metrics`."""
        self.step_losses = {f"train/{name}": value.detach() for name, value in losses.items()}
        if compat.should_log_this_step(self.trainer) or self.trainer.fast_dev_run:  # Lightning's own test
            self.log_dict({**self.step_losses, **self.learning_rates()}, batch_size=batch_size)

    # -- optimizer steps ------------------------------------------------------------------------------------------

    def step_generator(self, opt_g, loss: Tensor) -> None:
        """Backward `loss` and step the generators' optimizer (counted: `global_step` advances); updates the EMA."""
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        self.update_ema()

    def step_discriminator(self, opt_d, loss: Tensor) -> None:
        """Backward `loss` and step the discriminators' optimizer, not counted as a training step."""
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)

    # -- exponential moving average of the generators -------------------------------------------------------------

    def init_ema(self, *names: str) -> None:
        """Keep an EMA copy of each named generator when `ema_decay` is set (used for samples and evaluation)."""
        decay = self.hparams.ema_decay
        if decay is None:
            return
        if not 0.0 < decay < 1.0:
            raise ValueError(f"model.ema_decay must be in (0, 1) (e.g. 0.999) or null to disable, got {decay}")
        self.ema = nn.ModuleDict(
            {
                name: AveragedModel(getattr(self, name), multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
                for name in names
            }
        )
        for copy in self.ema.values():
            copy.requires_grad_(False)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema is not None:
            for name, copy in self.ema.items():
                copy.update_parameters(getattr(self, name))

    def generator_name(self, direction: str) -> str:
        """The name of the generator that makes `direction` (one of `metric_directions()`)."""
        return "G"

    def inference_generator(self, name: str) -> nn.Module:
        """The generator used for samples, evaluation and inference: its EMA copy when EMA is on."""
        return self.ema[name].module if self.ema is not None else getattr(self, name)

    # -- per-process state in checkpoints (random generators, image pools) ----------------------------------------

    def image_pools(self) -> dict[str, ImagePool]:
        return {name: value for name, value in vars(self).items() if isinstance(value, ImagePool)}

    def on_fit_start(self) -> None:
        # Each process draws its own noise, dropout masks and pool choices (seed_everything gives them all the same
        # seed); rank 0 keeps the single-process draws. A resumed run gets its saved states instead (on_train_start).
        if self.global_rank == 0:
            return
        if self._rng_to_restore is None:
            torch.manual_seed(torch.initial_seed() + 1_000_003 * self.global_rank)  # also seeds CUDA
        if not self._pools_restored:
            for pool in self.image_pools().values():
                pool.reseed(pool.seed + 1_000_003 * self.global_rank)

    def on_validation_epoch_start(self) -> None:
        broadcast_buffers(self)  # every process evaluates rank 0's batch-norm statistics (the checkpointed ones)

    def on_train_start(self) -> None:
        # Restored here, not at load time: setting up dataloaders and the sanity check come in between.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        count_epoch_started_after_last_batch(self.trainer.fit_loop)
        self._schedules_to_current_epoch()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = {"rng": rng_states(), "pools": {name: pool.state_dict() for name, pool in self.image_pools().items()}}
        checkpoint["rank_states"] = gather_from_ranks(state)  # every process saves; only rank 0 writes the file
        epoch_end_as_last_batch(checkpoint.get("loops") or {})  # restored exactly with max_steps too

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rank_states")
        if not states:
            return
        trainer = compat.attached_trainer(self)
        world_size = trainer.world_size if trainer is not None else 1
        own = states[self.global_rank % len(states)]
        for name, pool in self.image_pools().items():
            if name in own["pools"]:
                pool.load_state_dict(own["pools"][name])
                self._pools_restored = True
        if len(states) == world_size:
            self._rng_to_restore = own["rng"]
        elif self.global_rank == 0 and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            warnings.warn(
                f"the checkpoint was written by {len(states)} processes and this run has {world_size}: training "
                "resumes, but random draws (noise, dropout) will not continue exactly as before",
                stacklevel=2,
            )

    # -- what image-quality metrics compare (read by the metrics callback) ---------------------------------------

    def metric_directions(self) -> dict[str, tuple[str | None, str]]:
        """For FID/KID/IS: each direction's name -> (the held-out domain its generator translates, or None when it
        generates from noise; the domain whose held-out images the results are compared with)."""
        raise NotImplementedError(f"{type(self).__name__} does not define metric_directions()")

    def generate(self, direction: str, source: Tensor) -> Tensor:
        """Images of `direction` in [-1, 1] for metrics, made by the inference generator: translations of the (B, C,
        H, W) `source` images, or for a noise direction samples number `source` ((B,) int64): sample i is the same
        on every call, whatever the batching or the number of processes."""
        raise NotImplementedError(f"{type(self).__name__} does not define generate()")

    # -- prediction: `python -m lit_gan predict`, `Trainer.predict` ------------------------------------------------

    def predict_directions(self, domains: Iterable[str]) -> dict[str, str]:
        """The directions that translate images of `domains` ("A", "B"): {direction: its source domain}.

        Raises:
            ValueError: naming data.predict_domain, if the model translates none of `domains`, or nothing at all
                (DCGAN, which generates from noise).
        """
        name, domains = type(self).__name__, list(domains)
        directions = {d: source for d, (source, _) in self.metric_directions().items() if source is not None}
        if not directions:
            raise ValueError(
                f"{name} generates images from noise and translates none: predict (data.predict_path) needs an "
                "image-to-image model (CycleGAN, Pix2Pix); DCGAN's samples are in the run's sample grids"
            )
        chosen = {d: source for d, source in directions.items() if source in domains}
        if not chosen:
            sources = " and ".join(f"domain {source} images ({d})" for d, source in directions.items())
            raise ValueError(
                f"data.predict_domain {'/'.join(domains)}: {name} translates {sources}; set data.predict_domain: "
                f"{next(iter(directions.values()))}"
            )
        return chosen

    def predict_step(self, batch: dict, batch_idx: int = 0, dataloader_idx: int = 0) -> dict[str, Tensor]:
        """{direction: (B, C, h, w) translations in [-1, 1]} of the images of each domain the batch holds ("A",
        "B") by the inference generators; images padded by the data module (a "padding" key, see
        `lit_gan.data.predict`) are cropped back to their own size. A batch of unreadable files only gives {}."""
        domains = [d for d in ("A", "B") if d in batch]
        if not domains:
            return {}
        return {
            direction: crop_padding(self.generate(direction, batch[source]), batch.get("padding"))
            for direction, source in self.predict_directions(domains).items()
        }

    # -- what the data must satisfy -------------------------------------------------------------------------------

    @property
    def size_multiple(self) -> int:
        """Image height and width must be multiples of this (read by the data module to validate crop sizes)."""
        return 1


def first_conv(net: nn.Module) -> nn.Conv2d | nn.ConvTranspose2d:
    """The first convolution of `net`, e.g. to read how many input channels it expects."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return module
    raise ValueError(f"{type(net).__name__} has no convolution")


def last_conv(net: nn.Module) -> nn.Conv2d | nn.ConvTranspose2d:
    """The last convolution of `net` in module order (the output layer of the generators here)."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no convolution")
    return convs[-1]
