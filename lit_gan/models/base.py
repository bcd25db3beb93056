"""`GANModule`: what every GAN LightningModule here shares (manual optimization, optimizers and LR policies, injected
networks, EMA, the adversarial term and extra loss terms, evaluation steps, predict)."""

import copy
import inspect
import math
import os
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import OptimizerCallable
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lit_gan import compat
from lit_gan.augment import AugmentArg, build_augment
from lit_gan.compat import count_epoch_started_after_last_batch, epoch_end_as_last_batch
from lit_gan.contracts import Direction, SizedNetwork
from lit_gan.distributed import broadcast_buffers
from lit_gan.losses import GeneratorLoss, GeneratorStep, intermediate_features
from lit_gan.losses.gan import r1_penalty
from lit_gan.metric_keys import LEARNING_RATES, TRAIN
from lit_gan.models.ema import EMA
from lit_gan.models.legacy import upgrade_checkpoint
from lit_gan.models.optim import GANAdam
from lit_gan.models.rank_state import ProcessStates
from lit_gan.models.schedules import (
    LRPolicy,
    LRPolicyName,
    ProgressDecay,
    build_scheduler,
    check_run_length,
    run_progress,
)
from lit_gan.networks.init import InitName, init_weights
from lit_gan.networks.shapes import crop_padding
from lit_gan.runs import guard_trainer_checkpoints, read_checkpoint

compat.skip_needless_result_moves()  # `self.log` without walking each key's stored result on every call


@dataclass(frozen=True)
class SmokeTest:
    """The smallest working instance of a model, for the tests generated from the model catalogue (fit, exact
    resume, metrics, precision, DDP, export) and for quick smoke runs: init args in config form, and the data
    settings it trains on (on top of a tiny `synthetic` dataset)."""

    model: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)


class GANModule(ProcessStates, pl.LightningModule):
    """Base of the GAN LightningModules: everything but a model's own networks, losses and step order.

    A model passes its own arguments and `**kwargs` (the ones below) to `super().__init__`, hands its networks to
    `add_networks` (copied, initialized, and kept in `generators`/`discriminators`, `nn.ModuleDict`s keyed by
    direction and by the domain judged), and implements `training_step` (with `step_generator`,
    `step_discriminator` and `generator_losses_against`), `evaluation_losses`, `directions` and `sample_images`.

    `global_step` counts iterations: the generator's optimizer step is counted, the discriminator's is not (it is
    still run through the strategy, so precision plugins and DDP apply). Checkpoints also hold, per process, the
    random generators and the image pools (`pools`), so a resumed run continues exactly; each process's pools draw
    from their own seed.

    Args:
        lr: learning rate of the generators' optimizer, and of the discriminators' unless `lr_D` is given (one for
            both, as the references).
        lr_D: learning rate of the discriminators' optimizer, for two time-scale updates (TTUR, Heusel et al. 2017;
            e.g. half of `lr` when the discriminator wins too early); null: `lr`.
        optimizer_G: the generators' optimizer, built with `lr` in place of its own learning rate (default: Adam with
            betas (0.5, 0.999)); e.g. `--model.optimizer_G torch.optim.AdamW --model.optimizer_G.weight_decay 0.01`.
        optimizer_D: the discriminators' optimizer, built with `lr`.
        lr_policy: how the learning rate changes per epoch (see `LRPolicy`), or just a policy's name (with
            `LRPolicy`'s other defaults); null: the model's `default_lr_policy`.
        ema_decay: keep an exponential moving average of the generators with this decay (e.g. 0.999) and use it
            for samples, evaluation and inference; null disables it.
        ema_rampup: let the average's half-life grow with training, at most this ratio of the steps taken so far
            (StyleGAN2-ADA's ema_rampup, 0.05), so that early averages do not blur the samples with the initial
            weights (see `lit_gan.models.ema.EMA`); null: the constant `ema_decay` from the first step.
        r1_gamma: weight of the R1 penalty (Mescheder et al. 2018; StyleGAN2, StarGAN v2's lambda_reg): every
            discriminator also minimises `r1_gamma / 2 * E[||grad_x sum D(x)||^2]` on its real images (the sum over
            a patch discriminator's outputs, as StarGAN v2's r1_reg); 0 disables it.
        r1_every: lazy regularization (StyleGAN2): apply R1 every this many iterations only, with its weight
            multiplied by as many, which costs a fraction of the extra backward pass. Logged as `train/R1`.
        init_type: weight initialization of every network.
        init_gain: scale of the weight initialization.
        generator_losses: extra generator loss terms, each with its weight (see `lit_gan.losses.terms`), e.g.
            `lit_gan.losses.FeatureMatching`; logged as `train/<name>`.
        augment: differentiable augmentation of every discriminator input in training (`lit_gan.augment.DiffAugment`:
            DiffAugment's policies, optionally with ADA's adaptive probability), or just its policy, e.g.
            "color,translation,cutout"; its probability is logged as `train/augment_p`. Null disables it.
    """

    val_metric: ClassVar[str | None] = None
    """Validation metric the "plateau" LR policy monitors (lower is better)."""
    default_lr_policy: ClassVar[LRPolicy] = LRPolicy()
    """The LR policy when `lr_policy` is not given."""
    smoke_test: ClassVar[SmokeTest | None] = None
    """The model's tiny instance for the generated tests (see `SmokeTest`); None leaves the model out of them."""

    def __init__(
        self,
        lr: float = 2e-4,
        optimizer_G: OptimizerCallable = GANAdam,
        optimizer_D: OptimizerCallable = GANAdam,
        lr_policy: LRPolicy | LRPolicyName | None = None,
        ema_decay: float | None = None,
        ema_rampup: float | None = None,
        lr_D: float | None = None,
        r1_gamma: float = 0.0,
        r1_every: int = 1,
        init_type: InitName = "normal",
        init_gain: float = 0.02,
        generator_losses: list[GeneratorLoss] | None = None,
        augment: AugmentArg = None,
    ) -> None:
        super().__init__()
        self._save_arguments(inspect.currentframe())
        self.automatic_optimization = False
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"model.ema_decay must be in (0, 1) (e.g. 0.999) or null to disable, got {ema_decay}")
        if ema_rampup is not None and (ema_decay is None or ema_rampup <= 0):
            raise ValueError(f"model.ema_rampup must be > 0 (e.g. 0.05) with model.ema_decay set, got {ema_rampup}")
        if r1_gamma < 0 or r1_every < 1:
            raise ValueError(f"model.r1_gamma must be >= 0 and model.r1_every >= 1, got {r1_gamma} and {r1_every}")
        if lr_D is not None and lr_D <= 0:
            raise ValueError(f"model.lr_D must be > 0 or null (the generators' model.lr), got {lr_D}")
        self.lr_policy = _lr_policy(lr_policy) or self.default_lr_policy
        self.optimizer_G, self.optimizer_D = optimizer_G, optimizer_D
        self.ema_decay, self.ema_rampup, self.init_type, self.init_gain = ema_decay, ema_rampup, init_type, init_gain
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self._raw_translators = False  # `raw_generators()`: the trained generators in place of their averages
        self._r1: Tensor | None = None  # the last R1 penalty (weighted), logged as train/R1
        self._iteration = 0  # global_step when the current training batch started (whether G or D steps first)
        self.generators, self.discriminators = nn.ModuleDict(), nn.ModuleDict()
        self.ema: nn.ModuleDict | None = None
        self.loss_terms = nn.ModuleList(generator_losses or [])
        self.augment = build_augment(augment)  # hooked in front of each discriminator by `add_networks`
        self.step_losses: dict[str, Tensor] = {}  # the last training step's loss terms, for callbacks
        # Adam's implementation for both optimizers, e.g. {"fused": True} (torch's default when empty), set by the
        # `speed` callback before `configure_optimizers`. Not the optimizers' own argument
        # (`--model.optimizer_G.init_args.fused`) on purpose: it is a speed setting, one switch for every optimizer of
        # every model beside the other speed settings (channels_last, compile), that changes no result beyond float
        # rounding, while the optimizers are model hyperparameters chosen per model and config (ProGAN's, StarGAN
        # v2's), saved with the checkpoint; and a wrong value fails naming `speed.adam` (`_optimizer`).
        self.adam_options: dict = {}

    def _save_arguments(self, frame) -> None:
        """Save the constructor's arguments (the model's and these) as hyperparameters.

        Built by the CLI, networks, optimizers and loss terms are saved as their configs (class path and init
        args), so that `load_from_checkpoint(path)` rebuilds the whole model. Built in Python, they are objects and
        are left out (their weights are in the state dict): pass them again to `load_from_checkpoint(path, ...)`
        (`augment` too, when given as a `DiffAugment`: its state is in the state dict).
        """
        if not compat.hyperparameters_given_by_cli():  # built in Python, not by LightningCLI
            # Read from the constructors' frames here rather than by Lightning's `save_hyperparameters`, whose frame
            # walk expects each constructor's signature in its locals: `model_defaults` lists inherited arguments in
            # the signature that the model's own constructor receives through **kwargs.
            given = init_arguments(frame, self)
            self.hparams.update({key: value for key, value in given.items() if _plain(value)})
            if isinstance(self.hparams.get("lr_policy"), LRPolicy):
                self.hparams["lr_policy"] = asdict(self.hparams["lr_policy"])  # plain values: read weights-only
        else:
            self.save_hyperparameters(frame=frame, logger=False)

    # -- networks -------------------------------------------------------------------------------------------------

    def add_networks(self, generators: dict[str, nn.Module], discriminators: dict[str, nn.Module]) -> None:
        """Copy each network, initialize it (`init_type`, `init_gain`), and keep it: generators by the direction
        they make (keys of `directions()`), discriminators by the domain they judge. In this order, so that a seed
        gives the same weights as before. Keeps an EMA copy of each generator when `ema_decay` is set, and puts
        `augment` in front of each discriminator (in training mode only)."""
        for name, net in generators.items():
            self.generators[name] = init_weights(copy.deepcopy(net), self.init_type, self.init_gain)
        for name, net in discriminators.items():
            self.discriminators[name] = init_weights(copy.deepcopy(net), self.init_type, self.init_gain)
            if self.augment is not None:
                self.augment.attach(self.discriminators[name])
        if self.ema_decay is not None:
            self.ema = nn.ModuleDict(
                {name: EMA(g, self.ema_decay, self.ema_rampup) for name, g in self.generators.items()}
            )
            self.ema.requires_grad_(False)

    def translator(self, direction: str) -> nn.Module:
        """The generator of `direction` used for samples, evaluation and inference: its EMA copy when EMA is on
        (outside `raw_generators()`)."""
        if self.ema is None or self._raw_translators:
            return self.generators[direction]
        return self.ema[direction].module

    @contextmanager
    def raw_generators(self) -> Iterator[None]:
        """Within the block, `translator` (samples, metrics, `generate`) gives the trained generators instead of their
        moving averages: what the metrics callback scores as `val/<key>_raw` beside the EMA's numbers."""
        previous, self._raw_translators = self._raw_translators, True
        try:
            yield
        finally:
            self._raw_translators = previous

    def forward(self, x: Tensor, direction: str | None = None) -> Tensor:
        """`direction`'s images from `x` (images in [-1, 1], or latents), by the inference generator; the model's
        first direction by default."""
        return self.translator(direction or next(iter(self.directions())))(x)

    @property
    def size_multiple(self) -> int:
        """Image height and width must be multiples of this (read by the data module to validate crop sizes)."""
        multiples = [g.size_multiple for g in self.generators.values() if isinstance(g, SizedNetwork)]
        return math.lcm(*multiples) if multiples else 1

    # -- optimizers and learning rates ----------------------------------------------------------------------------

    def configure_optimizers(self):
        """`optimizer_G` over `generator_parameters()` at `lr` and `optimizer_D` over the discriminators' at `lr_D`
        (`lr` when null), each with a scheduler of `lr_policy`."""
        if self.lr_policy.policy == "plateau" and self.val_metric is None:
            raise ValueError(f"lr_policy 'plateau' needs a validation metric, which {type(self).__name__} lacks")
        opt_g = self._optimizer(self.optimizer_G, self.generator_parameters(), "optimizer_G", self.hparams.lr)
        lr_d = self.hparams.get("lr_D") or self.hparams.lr
        opt_d = self._optimizer(self.optimizer_D, self.discriminators.parameters(), "optimizer_D", lr_d)
        return [opt_g, opt_d], [build_scheduler(opt, self.lr_policy) for opt in (opt_g, opt_d)]

    def generator_parameters(self) -> Iterable[nn.Parameter] | list[dict]:
        """What `optimizer_G` trains: the generators' parameters (a model adds the networks trained with them, such as
        CUT's patch sampler; Adam's update is per parameter, so one optimizer over both equals two alike), or
        parameter groups as torch's optimizers take them (StarGAN v2: the mapping network at its own rate); the LR
        policy scales each group's own rate."""
        return self.generators.parameters()

    def _optimizer(
        self, build: OptimizerCallable, params: Iterable[nn.Parameter], key: str, lr: float
    ) -> torch.optim.Optimizer:
        try:
            return build(list(params), lr=lr, **self.adam_options)  # fused, foreach: `speed.adam`
        except TypeError as error:
            if not self.adam_options:
                raise
            raise ValueError(f"speed.adam {self.adam_options} does not apply to model.{key}: {error}") from None

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, weights_only: bool | None = None, **kwargs: Any):
        """Lightning's `load_from_checkpoint`, always weights-only (tensors and plain values): a `weights_only` the
        caller passes is ignored, and a checkpoint file holding objects that would run code is refused
        (`lit_gan.runs.CheckpointRefused`) before Lightning reads it."""
        if isinstance(checkpoint_path, str | os.PathLike) and "://" not in str(checkpoint_path):
            read_checkpoint(checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, *args, weights_only=True, **kwargs)

    def setup(self, stage: str) -> None:
        guard_trainer_checkpoints(self.trainer)  # weights-only reads, whatever the caller passed to fit/validate/...
        if stage == "fit" and self.lr_policy.policy == "progress":
            check_run_length(self.trainer)  # the "progress" policy needs max_steps, max_epochs or max_time

    def on_train_epoch_start(self) -> None:
        self._schedules_to_current_epoch()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._iteration = self.global_step
        self._schedules_to_current_progress(batch_idx)

    def _schedules_to_current_epoch(self) -> None:
        """Bring the per-epoch schedules to the current epoch. Doing it at epoch start (and at train start: a run
        resumed from an epoch's last batch begins the next epoch without `on_train_epoch_start`) rather than at epoch
        end keeps them right when an epoch is cut short by max_steps and resumed from a checkpoint."""
        for scheduler in self.lr_schedulers() or []:
            if isinstance(scheduler, ReduceLROnPlateau | ProgressDecay):
                continue  # stepped with its metric after validation; at every step
            while scheduler.last_epoch < self.current_epoch:
                scheduler.step()

    def _schedules_to_current_progress(self, batch_idx: int) -> None:
        """Set the "progress" policy's rates for the part of the run done before training batch `batch_idx`, ahead of
        the batch's optimizer steps. A function of the trainer's state alone (steps, epochs, the Timer's training
        time, which checkpoints keep), so a resumed run continues exactly."""
        if self.lr_policy.policy == "progress":
            progress = run_progress(self.trainer, batch_idx)
            for scheduler in self.lr_schedulers():
                scheduler.step_to(progress)

    def on_validation_epoch_end(self) -> None:
        fitting = self.trainer.state.fn == TrainerFn.FITTING
        if self.lr_policy.policy != "plateau" or self.trainer.sanity_checking or not fitting:
            return
        value = self.trainer.callback_metrics.get(self.val_metric)
        if value is None:
            raise RuntimeError(f"lr_policy 'plateau' monitors {self.val_metric!r}, which was not logged")
        for scheduler in self.lr_schedulers():
            scheduler.step(float(value))

    def learning_rates(self) -> dict[str, float]:
        """The current learning rates, for logging: {"train/lr_G", "train/lr_D"}."""
        opt_g, opt_d = self.optimizers()
        return {f"{LEARNING_RATES}_G": opt_g.param_groups[0]["lr"], f"{LEARNING_RATES}_D": opt_d.param_groups[0]["lr"]}

    def log_losses(self, losses: dict[str, Tensor], batch_size: int) -> None:
        """Log a training step's loss terms as `train/<name>` with the learning rates, and keep them (detached) in
        `step_losses` for callbacks such as the divergence guard; with `augment`, also its probability (`augment_p`).

        Only on the steps Lightning writes to the loggers (`trainer.log_every_n_steps`): each `self.log` costs about
        1 ms of host time (Lightning moves a result object per key), which on the other steps would buy nothing but a
        fresher `trainer.callback_metrics`."""
        if self.augment is not None:
            losses = {**losses, "augment_p": self.augment.p}
        if self._r1 is not None:  # the last R1 penalty computed (lazy regularization computes it every r1_every steps)
            losses = {**losses, "R1": self._r1}
        self.step_losses = {f"{TRAIN}{name}": value.detach() for name, value in losses.items()}
        if compat.should_log_this_step(self.trainer) or self.trainer.fast_dev_run:  # Lightning's own test
            self.log_dict({**self.step_losses, **self.learning_rates()}, batch_size=batch_size)

    # -- optimizer steps ------------------------------------------------------------------------------------------

    def step_generator(self, opt_g, loss: Tensor) -> None:
        """Backward `loss` and step the generators' optimizer (counted: `global_step` advances); updates the EMA."""
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        self.update_ema()

    def step_uncounted(self, opt, loss: Tensor) -> None:
        """Backward `loss` and step `opt` through the strategy (precision plugins and DDP apply), not counted as a
        training step: the discriminators' steps, and a model's extra generator steps (StarGAN v2's latent-guided
        one)."""
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.trainer.strategy.optimizer_step(opt.optimizer, closure=lambda: None)

    def step_discriminator(self, opt_d, loss: Tensor) -> None:
        """Backward `loss` and step the discriminators' optimizer, not counted as a training step."""
        self.step_uncounted(opt_d, loss)
        if self.augment is not None:
            self.augment.step()  # ADA: adjusts p every `interval` discriminator steps

    @staticmethod
    @contextmanager
    def frozen(networks: nn.Module) -> Iterator[None]:
        """Within the block, `networks`' parameters get no gradients (`requires_grad` False; each one's own setting is
        restored after): the discriminators while the generators' loss is backpropagated, as the references'
        `set_requires_grad(netD, False)`.

        What `optimizer.toggle_model()` does here (it freezes every parameter of the other optimizer), for a fraction
        of its host time: Lightning's toggle walks every optimizer's parameter groups and builds a state dict on each
        call, about 0.1 ms per step on a 2-core CPU, which a GPU step of a few milliseconds notices.
        """
        params = _parameters_of(networks)
        states = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, state in zip(params, states):
                p.requires_grad_(state)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.ema is not None:
            for name, average in self.ema.items():
                average.update_parameters(self.generators[name])

    def discriminator_loss(
        self, D: nn.Module, real: Tensor, fake: Tensor, weight: float = 1.0, downscaled: int = 1
    ) -> Tensor:
        """`D`'s loss on `real` and (detached) `fake` images by `gan_loss` (its real + fake terms times `weight`, plus
        any penalty, taken as if on the images `downscaled` times larger: `losses.gan.gradient_penalty`), plus R1 on
        `real` when `r1_gamma` > 0 on every `r1_every`-th iteration; its predictions on `real` feed adaptive
        augmentation (`augment`)."""
        loss, pred_real = self.gan_loss.discriminator_and_real_scores(D, real, fake, weight, downscaled)
        if self.augment is not None:
            self.augment.observe(pred_real, self.gan_loss.midpoint)
        if self.r1_due():
            loss = loss + self.weighted_r1(r1_penalty(D, real))
        return loss

    def r1_due(self) -> bool:
        """Whether this iteration applies R1: `r1_gamma` > 0, on every `r1_every`-th iteration (lazy regularization)."""
        return self.r1_gamma > 0 and self._iteration % self.r1_every == 0

    def weighted_r1(self, penalty: Tensor) -> Tensor:
        """An R1 `penalty` (E||grad||^2) times its weight, `r1_gamma` / 2, scaled up by `r1_every` for lazy
        regularization; kept (detached) to be logged as train/R1."""
        r1 = penalty * (self.r1_gamma / 2 * self.r1_every)
        self._r1 = r1.detach()
        return r1

    # -- generator loss: the adversarial term and the configured extra terms --------------------------------------

    def generator_losses_against(self, step: GeneratorStep, adversarial: str, suffix: str = "") -> dict[str, Tensor]:
        """The generator's adversarial loss against `step.discriminator` (one pass over `step.d_fake`), named
        `adversarial`, and each extra term of `generator_losses` times its weight, named `<term.name><suffix>`."""
        terms = [term for term in self.loss_terms if term.weight > 0]
        if any(term.needs_discriminator_features for term in terms):
            with intermediate_features(step.discriminator) as step.d_features:
                pred = step.discriminator(step.d_fake)
        else:
            pred = step.discriminator(step.d_fake)
        losses = {adversarial: self.gan_loss.generator(pred)}
        for term in terms:
            losses[f"{term.name}{suffix}"] = term(step) * term.weight
        return losses

    # -- validation and test: the model's evaluation losses, logged as val/<name> and test/<name> -----------------

    def evaluation_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Scalars measuring the inference generators on a held-out batch, logged as `val/<name>`/`test/<name>`."""
        raise NotImplementedError(f"{type(self).__name__} does not define evaluation_losses()")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_evaluation(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._log_evaluation(batch, "test")

    def _log_evaluation(self, batch: dict[str, Tensor], prefix: str) -> None:
        size = next(v for v in batch.values() if isinstance(v, Tensor)).shape[0]
        values = {f"{prefix}/{name}": value for name, value in self.evaluation_losses(batch).items()}
        # sync_dist: the mean over every process's share, so all processes step the plateau policy alike
        self.log_dict(values, batch_size=size, sync_dist=True)

    # -- checkpoints: per-process random generators and image pools (`ProcessStates`), resume bookkeeping --------

    def on_validation_epoch_start(self) -> None:
        broadcast_buffers(self)  # every process evaluates rank 0's batch-norm statistics (the checkpointed ones)

    def on_train_start(self) -> None:
        self.restore_rng_states()  # here, not at load time: setting up dataloaders and the sanity check come between
        count_epoch_started_after_last_batch(self.trainer.fit_loop)
        self._schedules_to_current_epoch()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        upgrade_checkpoint(checkpoint, type(self).__name__)  # one written before the model API: its names, renamed
        super().on_load_checkpoint(checkpoint)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        epoch_end_as_last_batch(checkpoint.get("loops") or {})  # restored exactly with max_steps too

    # -- what samples, metrics, predict and export read (`lit_gan.contracts.ImageGenerator`) --------------------

    def directions(self) -> dict[str, Direction]:
        """Each generator's direction (the keys of `generators`) -> the held-out domain it translates (None when it
        generates from noise) and the domain its images are compared with (FID/KID/IS), e.g. CycleGAN's
        {"AtoB": Direction("A", "B"), "BtoA": Direction("B", "A")}. Drives metrics, predict and export."""
        raise NotImplementedError(f"{type(self).__name__} does not define directions()")

    def generate(self, direction: str, source: Tensor) -> Tensor:
        """Images of `direction` in [-1, 1], made by the inference generator: translations of the (B, C, H, W)
        `source` images (a model that generates from noise overrides this: `source` then numbers the samples)."""
        return self(source, direction)

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of a sample grid per name, each (N, C, H, W) in [-1, 1]."""
        raise NotImplementedError(f"{type(self).__name__} does not define sample_images()")

    def export_names(self) -> list[str]:
        """What `python -m lit_gan export` writes, one file per name (`translator(name)`): every direction."""
        return list(self.directions())

    # -- prediction: `python -m lit_gan predict`, `Trainer.predict` ------------------------------------------------

    def predict_directions(self, domains: Iterable[str]) -> dict[str, str]:
        """The directions that translate images of `domains` ("A", "B"): {direction: its source domain}.

        Raises:
            ValueError: naming data.predict.domain, if the model translates none of `domains`, or nothing at all
                (DCGAN, which generates from noise).
        """
        name, domains = type(self).__name__, list(domains)
        directions = {d: source for d, (source, _) in self.directions().items() if source is not None}
        if not directions:
            raise ValueError(
                f"{name} generates images from noise and translates none: predict (data.predict.path) needs an "
                "image-to-image model (CycleGAN, Pix2Pix); DCGAN's samples are in the run's sample grids"
            )
        chosen = {d: source for d, source in directions.items() if source in domains}
        if not chosen:
            sources = " and ".join(f"domain {source} images ({d})" for d, source in directions.items())
            raise ValueError(
                f"data.predict.domain {'/'.join(domains)}: {name} translates {sources}; set data.predict.domain: "
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


class FromNoise:
    """What the models that learn one domain's images from noise share (DCGAN, ProGAN), mixed in before `GANModule`:
    one generator, direction "samples" (`G`), compared with the held-out A images; one discriminator of domain "A"
    (`D`); and `generate`, whose sample i comes from a latent drawn from seed i on the CPU, so that it is the same on
    every call and every device. The model sets `nz`, its latent size."""

    nz: int

    @property
    def G(self) -> nn.Module:
        """The generator being trained (noise -> images)."""
        return self.generators["samples"]

    @property
    def D(self) -> nn.Module:
        """The discriminator."""
        return self.discriminators["A"]

    def directions(self) -> dict[str, Direction]:
        return {"samples": Direction(None, "A")}

    def generate(self, direction: str, source: Tensor) -> Tensor:
        """The samples numbered `source` ((B,) integers), by the inference generator."""
        z = torch.stack([torch.randn(self.nz, generator=torch.Generator().manual_seed(int(i))) for i in source])
        return self(z.to(self.device))  # (B, C, H, W)


_PARAMETERS: "weakref.WeakKeyDictionary[nn.Module, list[nn.Parameter]]" = weakref.WeakKeyDictionary()


def init_arguments(frame: FrameType | None, obj: object) -> dict[str, Any]:
    """The arguments `obj`'s constructors were called with: from `frame` (the innermost `__init__`, GANModule's)
    out through every `__init__` frame of `obj` (a model's own, `model_defaults`' wrapper), their `**kwargs`
    expanded; an outer (more specific) constructor's values win."""
    found: dict[str, Any] = {}
    while frame is not None and frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is obj:
        info = inspect.getargvalues(frame)
        args = {name: info.locals[name] for name in info.args if name != "self"}
        if info.keywords:
            args |= info.locals[info.keywords]
        found |= args
        frame = frame.f_back
    return found


def _parameters_of(networks: nn.Module) -> list[nn.Parameter]:
    """`list(networks.parameters())`, listed once per module: walking a generator's modules on every step cost more
    host time than switching its parameters (moving, casting or compiling the module keeps the same Parameters)."""
    params = _PARAMETERS.get(networks)
    if params is None:
        params = _PARAMETERS[networks] = list(networks.parameters())
    return params


def _plain(value: Any) -> bool:
    """Whether `value` is a plain value that a weights-only checkpoint can hold (not a network, class or function)."""
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool | LRPolicy)


def _lr_policy(value: LRPolicy | str | dict | None) -> LRPolicy | None:
    """`model.lr_policy` as an `LRPolicy`: given as one, by name, or as a dict (from a checkpoint's hyperparameters)."""
    if isinstance(value, str):
        return LRPolicy(value)
    return LRPolicy(**value) if isinstance(value, dict) else value
