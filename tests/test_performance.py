"""What the speed work relies on: mixed precision that trains correctly with manual optimization and every GAN loss,
and a training step that never waits on the device (no host synchronisation outside logging steps)."""

import collections
import inspect

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.precision import MixedPrecision

from lit_gan.cli import main
from lit_gan.losses import gradient_penalty
from lit_gan.networks import PatchGANDiscriminator
from tests.helpers import TINY_MODELS, batches_per_epoch, fit, model_class, tiny_args

MODELS = list(TINY_MODELS)


def finite_float32_weights(module: torch.nn.Module) -> bool:
    params = list(module.parameters())
    return all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in params)


def record_training_dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    """Hook every convolution and linear layer of `module` (torch's, and any leaf layer with a weight matrix, e.g. the
    equalized-learning-rate layers): the returned set collects the dtypes of their outputs in training forwards (with
    gradients, autocast on: not in the gradient penalty, which turns it off), i.e. what autocast made of them."""
    seen: set[torch.dtype] = set()

    def hook(layer, inputs, output):
        if layer.training and torch.is_grad_enabled() and torch.is_autocast_enabled(output.device.type):
            seen.add(output.dtype)

    for layer in module.modules():
        weight = getattr(layer, "weight", None)
        leaf_with_matrix = not list(layer.children()) and isinstance(weight, torch.nn.Parameter) and weight.dim() >= 2
        if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.Linear) or leaf_with_matrix:
            layer.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("model", MODELS)
def test_bf16_mixed_precision_trains_every_model(model):
    args = tiny_args("--trainer.max_steps=3", "--metrics.enabled=false", model=model)
    before = {name: p.detach().clone() for name, p in main(args, run=False).model.named_parameters()}
    cli = main([*args, "--trainer.precision=bf16-mixed"], run=False)
    dtypes = record_training_dtypes(cli.model)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert isinstance(cli.trainer.precision_plugin, MixedPrecision)
    assert dtypes == {torch.bfloat16}  # autocast ran every convolution of the training steps in bf16
    assert cli.trainer.global_step == 3
    assert finite_float32_weights(cli.model)  # autocast computes in bf16, the weights and the updates stay float32
    changed = [name for name, p in cli.model.named_parameters() if not torch.equal(p, before[name])]
    assert any(n.startswith("generators.") for n in changed) and any(n.startswith("discriminators.") for n in changed)
    losses = {k: float(v) for k, v in cli.trainer.logged_metrics.items() if k.startswith("train/")}
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses.values())


INIT_SCALE = 2.0**4  # small enough that no float16 gradient of the tiny networks overflows in 3 steps of growth


class ScalerSpy(Callback):
    """Counts the losses the scaler scaled, and records for each optimizer step which optimizer it was (0: the
    generators', 1: the discriminators'), the scale then, and the ratio of the gradient the backward produced for the
    optimizer's first parameter to the gradient the optimizer is about to use (the scale, once unscaled).
    With `inf_at` (a training step), the generators' gradient is made inf in that step's backward."""

    def __init__(self, scaler: torch.amp.GradScaler, inf_at: int | None = None) -> None:
        self.scaler, self.inf_at = scaler, inf_at
        self.steps: list[tuple[int, float, float]] = []
        self.scaled = 0
        self.first: list[torch.Tensor] = []
        self.raw: dict[int, torch.Tensor] = {}
        scale = scaler.scale

        def counted(outputs):
            self.scaled += 1
            return scale(outputs)

        scaler.scale = counted

    def on_train_start(self, trainer, pl_module) -> None:
        self.first = [opt.param_groups[0]["params"][0] for opt in trainer.optimizers]

        def seen(which: int, grad: torch.Tensor) -> torch.Tensor | None:
            if which == 0 and trainer.global_step == self.inf_at:
                grad = torch.full_like(grad, float("inf"))
            self.raw[which] = grad.detach().clone()
            return grad

        for which, param in enumerate(self.first):
            param.register_hook(lambda grad, which=which: seen(which, grad))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        which = [getattr(opt, "optimizer", opt) for opt in trainer.optimizers].index(optimizer)
        raw, used = self.raw.pop(which).float(), self.first[which].grad.float()
        ratio = (raw.abs().sum() / used.abs().sum()).item()
        self.steps.append((which, self.scaler.get_scale(), ratio))


def fit_float16(gan_mode: str, inf_at: int | None = None, steps: int = 3, callbacks=()):
    """`steps` training steps of the tiny CycleGAN under float16 autocast with a GradScaler on the CPU (what
    `16-mixed` is on a GPU); the scale starts at INIT_SCALE and doubles after every optimizer step without inf/nan."""
    cli = main(tiny_args(f"--model.gan_mode={gan_mode}", "--metrics.enabled=false"), run=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=INIT_SCALE, growth_interval=1)
    spy = ScalerSpy(scaler, inf_at)
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[spy, *callbacks],
        plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)],
    )  # fmt: skip
    before = {name: p.detach().clone() for name, p in cli.model.named_parameters()}
    trainer.fit(cli.model, datamodule=cli.datamodule)
    assert trainer.global_step == steps and finite_float32_weights(cli.model)
    return cli, scaler, spy, before


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla", "hinge", "wgangp"])
def test_float16_with_a_grad_scaler_steps_both_optimizers(gan_mode):
    """Both optimizers step through the scaler (the gradient penalty included): each backward is of a scaled loss,
    the gradients are unscaled before each step, and the scale grows after each of the 6 steps (no inf/nan found)."""
    cli, scaler, spy, before = fit_float16(gan_mode)
    assert spy.scaled == 6  # a generator and a discriminator backward per training step, each of a scaled loss
    assert [which for which, _, _ in spy.steps] == [0, 1] * 3  # G before D
    assert [scale for _, scale, _ in spy.steps] == [INIT_SCALE * 2**i for i in range(6)]
    assert scaler.get_scale() == INIT_SCALE * 2**6
    for _, scale, ratio in spy.steps:  # what the backward gave is `scale` times what the optimizer uses
        assert ratio == pytest.approx(scale, rel=1e-3)
    for prefix in ("generators.", "discriminators."):  # both optimizers stepped
        assert any(not torch.equal(p, before[n]) for n, p in cli.model.named_parameters() if n.startswith(prefix))


def test_float16_step_with_an_inf_gradient_is_skipped_and_the_scale_backs_off():
    """An inf in the generators' gradients in step 1: their optimizer skips that step (the weights stay) and the scale
    halves; the discriminators still step, and training goes on (the scale grows again)."""
    frozen = {}

    class Snapshots(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            frozen[batch_idx] = [p.detach().clone() for p in trainer.optimizers[0].param_groups[0]["params"]]

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            after = trainer.optimizers[0].param_groups[0]["params"]
            frozen[batch_idx] = all(torch.equal(a, b) for a, b in zip(frozen[batch_idx], after, strict=True))

    _, scaler, spy, _ = fit_float16("lsgan", inf_at=1, callbacks=[Snapshots()])
    assert [scale for _, scale, _ in spy.steps] == [INIT_SCALE * 2**i for i in (0, 1, 2, 1, 2, 3)]
    assert scaler.get_scale() == INIT_SCALE * 2**4
    assert frozen == {0: False, 1: True, 2: False}  # the generators' weights change in steps 0 and 2 only


def test_gradient_penalty_is_float32_under_float16_autocast():
    """In float16 the double backward through instance norm gives non-finite gradients; the penalty runs in float32
    under autocast and equals the float32 penalty."""
    torch.manual_seed(0)
    critic = PatchGANDiscriminator(ndf=4, n_layers=2)
    real, fake = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    results = []
    for dtype in (None, torch.float16):
        torch.manual_seed(1)  # the same interpolation weights
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            penalty = gradient_penalty(critic, real, fake)
        grads = torch.autograd.grad(penalty, [p for p in critic.parameters()][:-1])  # not the last bias: no effect
        assert penalty.dtype == torch.float32 and all(torch.isfinite(g).all() for g in grads)
        results.append((penalty.detach(), grads))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])


# -- no host synchronisation in the hot loop ------------------------------------------------------------------------

SYNCING = ["item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"]


@pytest.mark.parametrize("model", MODELS)
def test_training_steps_do_not_read_tensors_back_between_logging_steps(model, monkeypatch, extra: tuple[str, ...] = ()):
    """From each step's `on_train_batch_start` to its `on_train_batch_end` (the training step, both optimizer steps,
    the EMA update, `self.log`, and every callback's batch-end hook, the divergence guard's included), no tensor is
    read back to the host on steps that do not log: on a GPU each such read would stall the step until the device
    finishes. (Image pools draw with a CPU generator, which does not wait on the device; they are off here so every
    read that happens is one that would.) `extra`: more arguments, for variants called from other tests."""
    reads: collections.Counter = collections.Counter()
    watching = [False]
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def watched(self, *args, _name=name, _original=original, **kwargs):
            if watching[0]:
                reads[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, watched)
    pools = "pool_size" in inspect.signature(model_class(model)).parameters
    extra = [*extra, "--model.pool_size=0"] if pools else list(extra)
    data = [batches_per_epoch(model, 6)]
    cli = main(
        tiny_args("--trainer.max_steps=5", "--trainer.log_every_n_steps=100", "--metrics.enabled=false", *extra, *data,
                  model=model),
        run=False,
    )  # fmt: skip
    watched_steps = []

    def start(batch, batch_idx):  # module hooks run after the callbacks' at batch start, and after them at batch end
        watching[0] = 1 <= batch_idx <= 3
        if watching[0]:
            watched_steps.append(batch_idx)

    def end(outputs, batch, batch_idx):
        watching[0] = False

    cli.model.on_train_batch_start = start
    cli.model.on_train_batch_end = end
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert watched_steps == [1, 2, 3] and cli.trainer.global_step == 5
    assert not reads, f"host reads of tensors inside training steps: {dict(reads)}"


@pytest.mark.parametrize("every", [1, 3])
def test_loss_terms_reach_the_logger_on_every_logging_step(every, monkeypatch):
    """The loss terms are logged only on the steps Lightning writes (log_every_n_steps), and on each of them."""
    from lit_gan.loggers import WandbLogger

    written = []
    original = WandbLogger.log_metrics

    def spy(self, metrics, step=None):
        if "train/G_A" in metrics:
            written.append((step, sorted(metrics)))
        return original(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    fit(tiny_args("--trainer.max_steps=6", f"--trainer.log_every_n_steps={every}", "--metrics.enabled=false"))
    assert [step for step, _ in written] == [s for s in range(6) if (s + 1) % every == 0]
    terms = {"train/G_A", "train/G_B", "train/cycle_A", "train/cycle_B", "train/idt_A", "train/idt_B", "train/D_A",
             "train/D_B", "train/lr_G", "train/lr_D"}  # fmt: skip
    assert all(terms <= set(keys) for _, keys in written)
