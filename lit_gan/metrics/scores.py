"""FID, KID and Inception Score in stages, as torch-fidelity computes them: images -> features -> numbers.

Each image is encoded once (`extract`); the numbers come from torchmetrics' FrechetInceptionDistance,
KernelInceptionDistance and InceptionScore, fed those features. Real-image features can therefore be cached and
reused (`lit_gan.metrics.cache`), and one extractor pass serves all three metrics.
"""

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.data import dim_zero_cat

from lit_gan.metric_keys import FID, IS_MEAN, IS_STD, KID_MEAN, KID_STD

RESULT_KEYS = (FID, KID_MEAN, KID_STD, IS_MEAN, IS_STD)
LOGITS = "logits_unbiased"  # torch-fidelity's name of the logits Inception Score uses (its default too)


def to_uint8(images: Tensor) -> Tensor:
    """(B, C, H, W) images in [-1, 1] -> uint8 in [0, 255], rounded as when saved to PNG (torchvision's
    save_image); grayscale is repeated to RGB. Real images loaded from 8-bit files come back exactly."""
    images = images.detach().float()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return ((images + 1) * 127.5 + 0.5).clamp_(0, 255).to(torch.uint8)


@dataclass
class Features:
    """What the extractor gives for a set of images."""

    features: Tensor  # (N, D) float32: pool3 for InceptionV3, compared by FID and KID
    logits: Tensor | None = None  # (N, K) float32, for the Inception Score; None when the extractor has none

    @classmethod
    def cat(cls, parts: list["Features"]) -> "Features":
        logits = None if not parts or parts[0].logits is None else torch.cat([p.logits for p in parts])
        return cls(torch.cat([p.features for p in parts]) if parts else torch.empty(0), logits)

    def __len__(self) -> int:
        return len(self.features)


@torch.no_grad()
def extract(extractor: nn.Module, images: Tensor) -> Features:
    """Encode uint8 (B, 3, H, W) images with a torch-fidelity style extractor: it returns a tuple in the order of
    its `features_list`, the first entry being the features; logits when the list has "logits_unbiased"."""
    outputs = extractor(images)
    names = list(extractor.features_list)
    logits = outputs[names.index(LOGITS)].float().cpu() if LOGITS in names else None
    return Features(outputs[0].float().cpu(), logits)


class _Given(nn.Module):
    """A 'feature extractor' for torchmetrics that passes already extracted features through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


class AdaptiveKID(KernelInceptionDistance):
    """KID whose subset size shrinks to the number of images when there are fewer than `subset_size`, as
    StyleGAN2-ADA does (torchmetrics would raise), so that small held-out sets of style datasets work."""

    def compute(self) -> tuple[Tensor, Tensor]:
        n = min(len(dim_zero_cat(self.real_features)), len(dim_zero_cat(self.fake_features)))
        if n < 2:
            raise ValueError(f"KID needs at least 2 real and 2 generated images, got {n}")
        full, self.subset_size = self.subset_size, min(self.subset_size, n)
        try:
            return super().compute()
        finally:
            self.subset_size = full


class QualityMetrics:
    """FID, KID and (given logits) Inception Score of generated against real features.

    Args:
        num_features: feature dimension (2048 for InceptionV3's pool3).
        inception_score: compute the Inception Score (needs logits with the generated features).
        kid_subsets: KID's number of random subsets.
        kid_subset_size: KID's subset size (shrunk to the number of images when there are fewer).
        kid_degree: degree of KID's polynomial kernel (x.y / d + 1) ** degree.
        is_splits: the Inception Score's number of splits.
        seed: seed of KID's subsets and the Inception Score's split order, so the numbers are reproducible;
            the caller's random state is left untouched.
    """

    def __init__(
        self,
        num_features: int,
        inception_score: bool = True,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        kid_degree: int = 3,
        is_splits: int = 10,
        seed: int = 0,
    ) -> None:
        given = _Given(num_features)
        # Every process is given all features (see the metrics callback), so no state is synchronised.
        common = {"sync_on_compute": False}
        with warnings.catch_warnings():  # "will save all extracted features": that is the point here
            warnings.filterwarnings("ignore", "Metric `.*` will save all extracted features", UserWarning)
            self.fid = FrechetInceptionDistance(feature=given, **common)
            self.kid = AdaptiveKID(given, kid_subsets, kid_subset_size, kid_degree, **common)
            self.inception = InceptionScore(feature=given, splits=is_splits, **common) if inception_score else None
        self.seed = seed

    def compute(self, real: Features, fake: Features) -> dict[str, float]:
        """The RESULT_KEYS (the Inception Score's only with `inception_score` and logits) of `fake` against `real`."""
        for metric in self._metrics():
            metric.reset()
        self.fid.update(real.features.double(), real=True)  # float64 throughout, result included
        self.fid.update(fake.features.double(), real=False)
        self.kid.update(real.features.double(), real=True)
        self.kid.update(fake.features.double(), real=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            kid_mean, kid_std = self.kid.compute()
            results = {FID: float(self.fid.compute()), KID_MEAN: float(kid_mean), KID_STD: float(kid_std)}
            if self.inception is not None and fake.logits is not None:
                self.inception.update(fake.logits.double())
                is_mean, is_std = self.inception.compute()
                results |= {IS_MEAN: float(is_mean), IS_STD: float(is_std)}
        return results

    def _metrics(self) -> list:
        return [m for m in (self.fid, self.kid, self.inception) if m is not None]
