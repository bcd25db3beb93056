"""Speed options: they change how the networks run, never the checkpoints' contents."""

import pytest
import torch

from lit_gan.callbacks import SpeedOptions
from lit_gan.callbacks.speed import networks
from lit_gan.cli import main
from tests.helpers import fit, tiny_args


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


def test_channels_last_trains_and_checkpoints_the_same_parameters(tmp_path):
    cli = fit(tiny_args("--trainer.max_steps=2", "--speed.channels_last=true", "--metrics.enabled=false"))
    conv = cli.model.generators["AtoB"].model[1].weight  # (C_out, C_in, 7, 7)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    saved = torch.load(next((tmp_path / "runs").rglob("last.ckpt")), weights_only=False)["state_dict"]
    assert saved.keys() == cli.model.state_dict().keys()
    assert all(torch.isfinite(value).all() for value in saved.values() if value.is_floating_point())


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
