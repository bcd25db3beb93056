"""`python -m lit_gan export`: the ExportedProgram (.pt2), ONNX and TorchScript files of every model's inference
generator match PyTorch to 1e-4 at two input sizes, checked here independently of the export's own parity table."""

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pytorch_lightning import LightningModule

from lit_gan.cli import main
from lit_gan.contracts import StyleConditioned
from lit_gan.export import TOLERANCE, ExportError, export_generator, export_model
from lit_gan.models import CycleGAN, Pix2Pix
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator, UnetGenerator
from lit_gan.networks.norm import NORM_LAYERS
from lit_gan.runs import CheckpointError
from tests.helpers import TINY_MODELS

pytestmark = pytest.mark.slow  # every export format of every model

onnxruntime = pytest.importorskip("onnxruntime", reason="the export tests need the dev extra (onnx, onnxruntime)")

DROPOUT_NET = ["--model.generator.num_downs=6", "--data.load_size=72", "--data.crop_size=64"]  # has a Dropout layer
EXTRA = {
    "cyclegan": ["--model.ema_decay=0.5"],  # the EMA generators are exported, not the live ones
    "pix2pix": DROPOUT_NET,  # dropout layers, off at inference
}
CASES: dict[str, tuple[str, list[str]]] = {  # name -> (tiny model, extra arguments)
    **{model: (model, EXTRA.get(model, [])) for model in TINY_MODELS},
    "pix2pix_dropout": ("pix2pix", [*DROPOUT_NET, "--model.dropout_at_inference=true"]),
}


def trained(case: str, trained_checkpoint) -> Path:
    """The last checkpoint of a 2-step fit of `case` (trained once per test session)."""
    model, extra = CASES[case]
    return trained_checkpoint(model, *extra)


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, trained_checkpoint) -> SimpleNamespace:
    """A case's checkpoint, its model and the export report; the files are in `<run folder>/export`."""
    ckpt = trained(request.param, trained_checkpoint)
    report = export_generator(ckpt, formats=["pt2", "onnx", "torchscript"])
    model = LightningModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    return SimpleNamespace(name=request.param, ckpt=ckpt, out=ckpt.parent.parent / "export", report=report, model=model)


def inputs(model: LightningModule, name: str) -> list[tuple[torch.Tensor, ...]]:
    """Inputs at two sizes: noise batches of 2 and 3, or images (2, 3, S, S) and (1, 3, S + m, S + 2m), with a style
    code per image for a style-conditioned generator (StarGAN v2's)."""
    g = torch.Generator().manual_seed(1)
    if name in model.directions() and model.directions()[name].source is None:
        return [(torch.randn(b, model.nz, generator=g),) for b in (2, 3)]
    m = model.size_multiple
    s = max(32, 2 * m)  # at least two multiples (see lit_gan.export.dynamic_dims)
    images = [torch.rand(shape, generator=g) * 2 - 1 for shape in ((2, 3, s, s), (1, 3, s + m, s + 2 * m))]
    net = model.translator(name)
    if isinstance(net, StyleConditioned):
        return [(x, torch.randn(len(x), net.style_dim, generator=g)) for x in images]
    return [(x,) for x in images]


def reference(model: LightningModule, name: str, x: tuple[torch.Tensor, ...], seed: int | None = 0) -> torch.Tensor:
    """The model's own inference output (its `forward`: eval mode, the EMA generator, dropout as configured; for a
    style-conditioned generator, the inference generator itself on the images and codes)."""
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        return model(x[0], name) if len(x) == 1 else model.translator(name)(*x)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        return torch.jit.load(str(path))


def run_onnx(path: Path, x: tuple[torch.Tensor, ...], runs: int = 1) -> list[torch.Tensor]:
    """`runs` outputs of one ONNX Runtime session on the inputs `x` (images, and style codes)."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = dict(zip(("input", "style"), (t.numpy() for t in x)))
    return [torch.from_numpy(session.run(None, feed)[0]) for _ in range(runs)]


def stochastic(name: str) -> bool:
    return name == "pix2pix_dropout"


def test_export_writes_each_format_per_direction_and_its_parity_passes(exported):
    directions = exported.model.export_names()  # the directions; StarGAN v2: its one generator
    expected = {exported.out / f"{d}{suffix}" for d in directions for suffix in (".pt2", ".pt", ".onnx")}
    assert set(exported.report.files) == expected and all(p.is_file() for p in expected)
    assert not list(exported.out.glob(".*.tmp"))
    assert len(exported.report.checks) == 3 * 2 * len(directions)  # 3 formats x 2 sizes
    assert exported.report.ok, exported.report.table()
    assert len({c.input_shape for c in exported.report.checks}) == 2


def assert_matches_pytorch(exported, load) -> None:
    """Each direction's exported network (`load(path stem)`) gives the model's own outputs at two sizes and batches."""
    for direction in exported.model.export_names():
        net = load(exported.out / direction)
        for x in inputs(exported.model, direction):
            torch.manual_seed(0)  # with dropout on at inference, the same seed draws the same masks in both
            with torch.no_grad():
                out = net(*x)
            expected = reference(exported.model, direction, x)
            assert out.shape == expected.shape
            assert (out - expected).abs().max().item() <= TOLERANCE


def test_torchscript_matches_pytorch_at_two_sizes(exported):
    assert_matches_pytorch(exported, lambda stem: load_torchscript(stem.with_suffix(".pt")))


def test_exported_program_matches_pytorch_at_two_sizes_and_batch_sizes(exported):
    assert_matches_pytorch(exported, lambda stem: torch.export.load(stem.with_suffix(".pt2")).module())


def test_onnx_matches_pytorch_at_two_sizes(exported):
    if stochastic(exported.name):
        pytest.skip("dropout on at inference: see test_onnx_samples_dropout_as_configured")
    for direction in exported.model.export_names():
        for x in inputs(exported.model, direction):
            (out,), expected = run_onnx(exported.out / f"{direction}.onnx", x), reference(exported.model, direction, x)
            assert out.shape == expected.shape
            assert np.abs(out.numpy() - expected.numpy()).max() <= TOLERANCE


def test_onnx_samples_dropout_as_configured(exported):
    """With dropout on at inference, each run of an ONNX Runtime session draws new masks (its graph optimizations
    would remove a plain Dropout node); without it, the outputs are deterministic."""
    direction = exported.model.export_names()[0]
    x = inputs(exported.model, direction)[0]
    first, second = run_onnx(exported.out / f"{direction}.onnx", x, runs=2)
    torch_first, torch_second = (reference(exported.model, direction, x, seed=None) for _ in range(2))
    assert torch.equal(first, second) == torch.equal(torch_first, torch_second) == (not stochastic(exported.name))
    if stochastic(exported.name):
        onnx_checks = [c for c in exported.report.checks if c.format == "onnx"]
        assert all("dropout off" in c.note for c in onnx_checks)  # their parity is on the deterministic path


def test_export_uses_the_ema_generator(tmp_path, trained_checkpoint):
    ckpt = trained("cyclegan", trained_checkpoint)
    model = LightningModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    (x,) = inputs(model, "AtoB")[0]
    export_generator(ckpt, tmp_path, "AtoB", formats=["torchscript"])
    scripted = load_torchscript(tmp_path / "AtoB.pt")
    with torch.no_grad():
        out, raw = scripted(x), model.generators["AtoB"](x)
    assert torch.allclose(out, model.ema["AtoB"].module(x), atol=TOLERANCE)
    assert not torch.allclose(out, raw, atol=TOLERANCE)


@pytest.mark.parametrize("norm", sorted(NORM_LAYERS))
@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_every_norm_of_every_translator_exports(generator, norm, tmp_path):
    """Models built in Python, with outputs spread over [-1, 1] and random running statistics, so that eval-mode
    norms and the 1e-4 tolerance matter; SyncBatchNorm is exported as the BatchNorm2d it equals in eval mode."""
    torch.manual_seed(0)
    if generator == "resnet":
        G, D = ResnetGenerator(ngf=4, n_blocks=1, norm=norm), PatchGANDiscriminator(ndf=4)
        model = CycleGAN(G, D, init_type="xavier", init_gain=1.0)
    else:
        G, D = UnetGenerator(num_downs=5, ngf=4, norm=norm), PatchGANDiscriminator(in_channels=6, ndf=4)
        model = Pix2Pix(G, D, init_type="xavier", init_gain=1.0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    report = export_model(model.train(), tmp_path, "AtoB", height=32)
    assert report.ok and len(report.checks) == 4, report.table()
    assert model.training  # the caller's model is left in its mode
    x = torch.rand(1, 3, 64, 128) * 2 - 1  # at least two size multiples (32 for this U-Net) per side
    with torch.no_grad():
        expected = reference(model.eval(), "AtoB", (x,))
        out = torch.export.load(tmp_path / "AtoB.pt2").module()(x)  # pt2 and onnx: the default formats
    assert expected.abs().max() > 0.05  # outputs away from 0, so that the tolerance means something
    assert (out - expected).abs().max() <= TOLERANCE


def test_cli_export_prints_the_parity_table(tmp_path, trained_checkpoint, capsys):
    ckpt = trained("dcgan", trained_checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt), "--out", str(tmp_path / "out"), "--direction", "samples"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["samples.onnx", "samples.pt2"]  # the defaults
    rows = [line for line in printed.splitlines() if line.startswith("| pt2") or line.startswith("| onnx")]
    assert len(rows) == 4 and all("| yes |" in row for row in rows)
    assert "| onnx | samples | 3x8 |" in printed  # the second batch size: dynamic batch
    assert "(B, 8) noise -> (B, 3, 32, 32)" in printed


def test_cli_export_defaults_to_the_run_folder(trained_checkpoint, capsys):
    ckpt = trained("pix2pix", trained_checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(ckpt), "--formats", "torchscript", "--height", "128", "--width", "192"])
    assert exit_info.value.code == 0
    assert (ckpt.parent.parent / "export" / "AtoB.pt").is_file()
    assert "| torchscript | AtoB | 2x3x128x192 |" in capsys.readouterr().out


def export_error(args: list[str], capsys) -> str:
    """The one-line message of an export that must fail (the command line prints it as `error: ...`)."""
    with pytest.raises((ExportError, CheckpointError)) as info:
        main(["export", *args])
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_checkpoint(tmp_path, capsys):
    err = export_error([str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "out")], capsys)
    assert "nope.ckpt not found" in err
    assert not (tmp_path / "out").exists()


def test_unknown_direction_lists_the_valid_ones(tmp_path, trained_checkpoint, capsys):
    ckpt = trained("cyclegan", trained_checkpoint)
    err = export_error([str(ckpt), "--direction", "AtoC", "--out", str(tmp_path / "out")], capsys)
    assert "'AtoC'" in err and "AtoB, BtoA" in err
    assert not (tmp_path / "out").exists()


def test_size_that_the_generator_cannot_take(tmp_path, trained_checkpoint, capsys):
    ckpt = trained("cyclegan", trained_checkpoint)
    err = export_error([str(ckpt), "--height", "30", "--out", str(tmp_path / "out")], capsys)
    assert "multiples of 4" in err and "30x30" in err
    assert not (tmp_path / "out").exists()


def test_missing_onnx_packages_fail_before_loading(tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name))
    not_a_checkpoint = tmp_path / "x.ckpt"  # never read: the packages are checked first
    not_a_checkpoint.write_text("not a checkpoint")
    err = export_error([str(not_a_checkpoint), "--out", str(tmp_path / "out")], capsys)
    assert "onnxruntime" in err and "pip install 'lit_gan[export]'" in err
    assert not (tmp_path / "out").exists()


def test_checkpoint_not_written_by_the_cli(tmp_path, capsys):
    ckpt = tmp_path / "python.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1}}, ckpt)
    err = export_error([str(ckpt), "--out", str(tmp_path / "out")], capsys)
    assert "not written by `python -m lit_gan fit`" in err
    assert not (tmp_path / "out").exists()


def test_file_that_is_no_checkpoint(tmp_path, capsys):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    err = export_error([str(tmp_path / "notes.ckpt"), "--out", str(tmp_path / "out")], capsys)
    assert "notes.ckpt is not a PyTorch checkpoint" in err
    assert not (tmp_path / "out").exists()
