"""`GANModule`: what every GAN LightningModule here shares (manual optimization, Adam pairs, LR policies, EMA)."""

import inspect

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lit_gan.models.schedules import LRSchedule, build_scheduler


class GANModule(pl.LightningModule):
    """Base of the GAN LightningModules: training logic shared by CycleGAN, pix2pix and DCGAN.

    Subclasses save hyperparameters with at least `lr`, `betas`, `lr_policy`, `n_epochs`, `n_epochs_decay`,
    `lr_step_epochs` and `ema_decay`, build their networks, call `init_ema(...)` with the names of their generators,
    and implement `training_step` with `step_generator`/`step_discriminator`.

    `global_step` counts iterations: the generator's optimizer step is counted, the discriminator's is not (it is
    still run through the strategy, so precision plugins and DDP apply).
    """

    val_metric: str | None = None
    """Validation metric the "plateau" LR policy monitors (lower is better)."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.ema: nn.ModuleDict | None = None

    def save_config(self, *networks: str) -> None:
        """Save the constructor's arguments as hyperparameters (call it first thing in `__init__`).

        Built by the CLI, the `networks` arguments are saved as their configs (class path and init args), so that
        `load_from_checkpoint(path)` rebuilds the whole model. Built in Python, they are network objects and are left
        out (their weights are in the state dict): pass them again to `load_from_checkpoint(path, generator=...)`.
        """
        frame = inspect.currentframe().f_back
        from_cli = _given_hyperparameters.get() is not None  # LightningCLI passes the parsed config
        self.save_hyperparameters(ignore=None if from_cli else list(networks), frame=frame, logger=False)

    # -- optimizers and learning rates ----------------------------------------------------------------------------

    def adam_pair(self, g_params, d_params):
        """One Adam over the generators' and one over the discriminators' parameters, with their schedulers."""
        hp = self.hparams
        opt_g = torch.optim.Adam(list(g_params), lr=hp.lr, betas=tuple(hp.betas))
        opt_d = torch.optim.Adam(list(d_params), lr=hp.lr, betas=tuple(hp.betas))
        if hp.lr_policy == "plateau" and self.val_metric is None:
            raise ValueError(f"lr_policy 'plateau' needs a validation metric, which {type(self).__name__} lacks")
        schedule = LRSchedule(hp.lr_policy, hp.n_epochs, hp.n_epochs_decay, hp.lr_step_epochs)
        return [opt_g, opt_d], [build_scheduler(opt, schedule) for opt in (opt_g, opt_d)]

    def on_train_epoch_start(self) -> None:
        # Bring the per-epoch schedules to the current epoch. Doing it here rather than at epoch end keeps them
        # right when an epoch is cut short by max_steps and resumed mid-epoch from a checkpoint.
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

    def inference_generator(self, name: str) -> nn.Module:
        """The generator used for samples, evaluation and inference: its EMA copy when EMA is on."""
        return self.ema[name].module if self.ema is not None else getattr(self, name)

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
