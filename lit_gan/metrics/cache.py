"""Features of real images, cached on disk: encoded once per (images, preprocessing, extractor), then reused.

The file name is a hash of the images' fingerprint (their file contents and preprocessing, from the data module)
and of the extractor (its class, outputs and weights), so a change to any of them misses the cache. Files are
written atomically: a run killed while writing leaves no partial cache behind.
"""

import hashlib
import os
from pathlib import Path

import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from lit_gan.metrics.scores import Features
from lit_gan.runs import atomic_write

CACHE_ENV = "LIT_GAN_CACHE"
FORMAT = 1  # bump when the stored features change meaning


def default_cache_dir() -> Path:
    """`$LIT_GAN_CACHE/features`, else ~/.cache/lit_gan/features."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lit_gan"
    return Path(root) / "features"


def extractor_fingerprint(extractor: nn.Module) -> str:
    """A hash of the extractor's class, its outputs and every weight and buffer."""
    digest = hashlib.sha1(f"{type(extractor).__qualname__}{getattr(extractor, 'features_list', '')}".encode())
    for name, tensor in extractor.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cache_path(cache_dir: str | os.PathLike | None, images: str, extractor: str) -> Path:
    """Where the features of the images with fingerprint `images`, encoded by the extractor with fingerprint
    `extractor`, are cached."""
    key = hashlib.sha1(f"{FORMAT}/{images}/{extractor}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / f"real_{key}.pt"


def load_features(path: Path) -> Features | None:
    """The cached features at `path`, or None if there are none (or the file is unreadable: it is then ignored,
    with a warning, and rewritten)."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return Features(stored["features"])
    except Exception as err:  # a foreign or damaged file: recompute rather than fail the run
        rank_zero_warn(f"ignoring unreadable feature cache {path} ({type(err).__name__}: {err}); recomputing it")
        return None


def save_features(path: Path, features: Features) -> None:
    """Write `features` to `path` atomically."""
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, "features": features.features}, tmp))
