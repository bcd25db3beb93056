"""Speed options: they change how the networks run, never the checkpoints' contents."""

import collections
import functools

import pytest
import torch
from pytorch_lightning.callbacks import Callback

from lit_gan.callbacks import SpeedOptions
from lit_gan.callbacks.speed import networks
from lit_gan.cli import main
from lit_gan.contracts import CheckpointsActivations
from tests.helpers import TINY_MODELS, fit, tiny_args


def speed(cli) -> SpeedOptions:
    return next(callback for callback in cli.trainer.callbacks if isinstance(callback, SpeedOptions))


@pytest.mark.parametrize("adam, expected", [("fused", {"fused": True}), ("for-loop", {"foreach": False})])
def test_adam_implementation_is_the_configured_one(adam, expected):
    cli = fit(tiny_args("--trainer.max_steps=1", f"--speed.adam={adam}", "--metrics.enabled=false"))
    for opt in cli.model.optimizers():
        for key, value in expected.items():
            assert opt.optimizer.defaults[key] is value


def test_fused_is_the_default():
    cli = main(tiny_args(), run=False)
    assert speed(cli).adam == "fused"


class StepLosses(Callback):
    """The loss terms each training step logged (run with log_every_n_steps 1), as floats."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})


TWO_STEPS = ["--trainer.max_steps=2", "--trainer.log_every_n_steps=1", "--metrics.enabled=false"]


def run_two_steps(*extra: str):
    """Two training steps of the tiny CycleGAN with `extra` arguments: (cli, losses per step, state dict copy)."""
    losses = StepLosses()
    cli = fit(tiny_args(*TWO_STEPS, *extra), callbacks=[losses])
    assert cli.trainer.global_step == 2 and len(losses.steps) == 2
    return cli, losses.steps, {k: v.detach().clone() for k, v in cli.model.state_dict().items()}


def cancelled_biases(module: torch.nn.Module) -> set[str]:
    """Biases of convolutions followed by instance norm: the norm subtracts them again, so their gradient is float
    noise, which Adam's first steps turn into full +-lr updates; they differ between runs without effect."""
    named = list(module.named_modules())
    return {
        f"{name}.bias"
        for (name, layer), (_, following) in zip(named, named[1:])
        if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
        and layer.bias is not None
        and isinstance(following, torch.nn.InstanceNorm2d)
    }


@pytest.fixture(scope="session")
def plain_run():
    """(*args) -> a plain run's (losses per step, state dict) with `args`, each computed once per test session."""
    runs: dict[tuple[str, ...], tuple] = {}

    def run(*args: str) -> tuple:
        if args not in runs:
            runs[args] = run_two_steps(*args)[1:]
        return runs[args]

    return run


def assert_trains_like_a_plain_run(plain: tuple, cli, steps, state) -> None:
    """The same losses at each step and the same weights after them as `plain`, a run without speed options (see
    `plain_run`), up to float rounding (another memory layout or kernel may sum in another order). A loss or weight 1e-4
    off fails; biases that instance norm cancels are skipped."""
    plain_steps, plain_state = plain
    for got, expected in zip(steps, plain_steps, strict=True):
        assert got.keys() == expected.keys() and len(got) >= 8
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert state.keys() == plain_state.keys()
    skipped = cancelled_biases(cli.model)
    assert skipped and len(skipped) < len(state) // 2  # the weights, and every other bias, are compared
    for name, value in state.items():
        if name not in skipped:
            torch.testing.assert_close(
                value, plain_state[name], rtol=1e-5, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}"
            )


def test_channels_last_trains_like_a_plain_run_and_checkpoints_the_same_parameters(tmp_path, plain_run):
    cli, steps, state = run_two_steps("--data.batch_size=2", "--speed.channels_last=true")
    conv_weights = [v for v in cli.model.state_dict().values() if v.dim() == 4]  # (C_out, C_in, k, k)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    assert any(not w.is_contiguous() for w in conv_weights)  # really NHWC, not only shapes where both coincide
    (checkpoint,) = (tmp_path / "runs").rglob("last.ckpt")  # before the plain run (in this folder too) adds its own
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]
    assert saved.keys() == state.keys()
    for name, value in saved.items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")
    assert_trains_like_a_plain_run(plain_run("--data.batch_size=2"), cli, steps, state)


@pytest.mark.xfail(
    strict=True,
    reason="torch CPU bug: InstanceNorm2d's backward gives wrong input gradients for a batch of 1 when the incoming "
    "gradient is channels-last (as a channels-last convolution's is): with x = torch.randn(1, 16, 8, 8) needing grad, "
    "nn.InstanceNorm2d(16)(x).backward(g.contiguous(memory_format=torch.channels_last)) != the same with g contiguous",
)
def test_channels_last_at_batch_size_1_trains_like_a_plain_run(plain_run):
    """The reference CycleGAN's batch size 1 with instance norm: the generators' gradients come out wrong on the CPU
    (torch 2.14), so channels-last training differs from plain training from the second step on."""
    cli, steps, state = run_two_steps("--speed.channels_last=true")
    assert_trains_like_a_plain_run(plain_run(), cli, steps, state)


GRAPH_CALLS: collections.Counter = collections.Counter()  # compiled graphs run, with and without gradients


def _counting_aot_eager(graph, example_inputs):
    """torch.compile's "aot_eager" backend (Dynamo capture + AOTAutograd's forward and backward graphs, run by
    PyTorch's kernels; no code generation, so it compiles in seconds here), counting every run of a compiled graph."""
    compiled = torch._dynamo.lookup_backend("aot_eager")(graph, example_inputs)

    @functools.wraps(compiled)
    def counted(*args):
        GRAPH_CALLS["grad" if torch.is_grad_enabled() else "no_grad"] += 1
        return compiled(*args)

    return counted


COUNTING_BACKEND = "lit_gan_tests_counting_aot_eager"
if COUNTING_BACKEND not in torch._dynamo.list_backends(exclude_tags=()):
    torch._dynamo.register_backend(_counting_aot_eager, name=COUNTING_BACKEND)


def test_compiled_training_steps_match_a_plain_run(plain_run):
    """With speed.compile the training steps run the compiled networks (their graphs run with gradients: forward
    and backward of a training step), and train as the plain networks do."""
    GRAPH_CALLS.clear()
    compile_args = ["--speed.compile=true", f"--speed.compile_backend={COUNTING_BACKEND}"]
    cli, steps, state = run_two_steps("--data.batch_size=2", *compile_args)
    assert all(net._compiled_call_impl is not None for _, net in networks(cli.model))
    assert GRAPH_CALLS["grad"] >= 2 * 4, dict(GRAPH_CALLS)  # two steps, four networks, each run at least once
    assert_trains_like_a_plain_run(plain_run("--data.batch_size=2"), cli, steps, state)


def test_compile_compiles_every_network_in_place_keeping_parameter_names():
    cli = main(tiny_args("--speed.compile=true", "--model.ema_decay=0.9"), run=False)
    names_before = list(cli.model.state_dict())
    speed(cli).setup(cli.trainer, cli.model, "fit")  # compiles lazily: nothing runs until the first forward
    assert [name for name, _ in networks(cli.model)] == [
        "generators.AtoB",
        "generators.BtoA",
        "discriminators.B",
        "discriminators.A",
        "ema.AtoB",
        "ema.BtoA",
    ]
    assert all(net._compiled_call_impl is not None for _, net in networks(cli.model))
    assert list(cli.model.state_dict()) == names_before  # checkpoints load with or without compile


def test_gpu_settings_apply_on_gpus_only():
    cli = main(tiny_args(), run=False)
    speed(cli).setup(cli.trainer, cli.model, "fit")  # on the CPU: torch's settings untouched
    assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.benchmark
    try:
        SpeedOptions(tf32=True, cudnn_benchmark=True).apply_gpu_settings()
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32
        SpeedOptions(tf32=False, cudnn_benchmark=False).apply_gpu_settings()
        assert torch.get_float32_matmul_precision() == "highest"
        assert not torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
    finally:  # torch's defaults, as the other tests expect
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = False, True


def test_activation_checkpointing_trains_like_a_plain_run(plain_run, checkpoint_calls):
    cli, steps, state = run_two_steps("--data.batch_size=2", "--speed.checkpoint_activations=true")
    assert len(checkpoint_calls) >= 2 * 2  # two steps, both generators' residual blocks
    checkpointing = {name: getattr(net, "checkpoint_activations", None) for name, net in networks(cli.model)}
    assert checkpointing == {  # the discriminators do not support it
        "generators.AtoB": True,
        "generators.BtoA": True,
        "discriminators.B": None,
        "discriminators.A": None,
    }
    assert_trains_like_a_plain_run(plain_run("--data.batch_size=2"), cli, steps, state)


def supports_checkpointing(model: str) -> bool:
    cli = main(tiny_args(model=model), run=False)
    return any(isinstance(net, CheckpointsActivations) for _, net in networks(cli.model))


@pytest.mark.parametrize("model", list(TINY_MODELS))
def test_activation_checkpointing_trains_every_model_as_without(model, checkpoint_calls):
    """Every model of the catalogue whose generator supports it trains exactly as without it (losses, weights and
    batch-norm buffers bit for bit on the CPU); the others are refused, naming the option."""
    args = tiny_args("--trainer.max_steps=3", "--trainer.log_every_n_steps=1", "--metrics.enabled=false", model=model)
    if not supports_checkpointing(model):
        with pytest.raises(ValueError, match=r"speed\.checkpoint_activations: no network of"):
            fit([*args, "--speed.checkpoint_activations=true"])
        return
    runs = []
    for extra in ([], ["--speed.checkpoint_activations=true"]):
        losses = StepLosses()
        cli = fit([*args, *extra], callbacks=[losses])
        assert cli.trainer.global_step == 3 and len(losses.steps) == 3
        runs.append((losses.steps, cli.model.state_dict()))
    assert checkpoint_calls  # only the second run checkpoints
    (plain_steps, plain_state), (steps, state) = runs
    assert steps == plain_steps and len(steps[0]) >= 2
    assert state.keys() == plain_state.keys()
    for name, value in state.items():
        torch.testing.assert_close(value, plain_state[name], rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")
