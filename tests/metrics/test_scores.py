"""FID, KID and IS from features, against independent numpy/scipy implementations of the published formulas."""

import numpy as np
import pytest
import torch
from scipy import linalg

from lit_gan.metric_keys import FID, IS_MEAN, IS_STD, KID_MEAN, KID_STD
from lit_gan.metrics.scores import Features, QualityMetrics, to_uint8


def reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance of Heusel et al., as pytorch-fid computes it (scipy's sqrtm)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3 on whole sets (Binkowski et al.)."""
    d, m = real.shape[1], len(real)
    kernel = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    off_diag = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    return float(off_diag(kxx) + off_diag(kyy) - 2 * kxy.mean())


def reference_is(logits: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) over one split (Salimans et al.)."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    kl = (p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1)
    return float(np.exp(kl.mean()))


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g) / d**0.5
    return (torch.randn(n, d, generator=g) @ mixing + shift).float()  # (n, d), correlated


def test_fid_matches_scipy():
    real, fake = features(64, 8, 0), features(48, 8, 1, shift=0.3)
    ours = QualityMetrics(8).compute(Features(real), Features(fake))[FID]
    assert ours == pytest.approx(reference_fid(real.double().numpy(), fake.double().numpy()), rel=1e-6)


def test_fid_of_identical_sets_is_zero():
    real = features(64, 8, 0)
    assert abs(QualityMetrics(8).compute(Features(real), Features(real))[FID]) < 1e-6


def test_kid_matches_polynomial_kernel_formula_and_uses_all_images_of_small_sets():
    real, fake = features(30, 8, 0), features(30, 8, 1, shift=0.2)
    results = QualityMetrics(8, kid_subset_size=1000).compute(Features(real), Features(fake))  # 30 < 1000
    assert results[KID_MEAN] == pytest.approx(reference_kid(real.double().numpy(), fake.double().numpy()), rel=1e-6)
    assert results[KID_STD] == pytest.approx(0.0, abs=1e-9)  # every subset is the whole set


def test_kid_subsets_are_seeded_and_leave_the_callers_random_state_alone():
    real, fake = features(60, 8, 0), features(60, 8, 1, shift=0.2)
    metrics = QualityMetrics(8, kid_subsets=20, kid_subset_size=10)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = metrics.compute(Features(real), Features(fake))
    assert torch.equal(torch.get_rng_state(), before)
    second = metrics.compute(Features(real), Features(fake))
    assert first == second
    assert first[KID_STD] > 0  # subsets of 10 out of 60 differ


def test_kid_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        QualityMetrics(8).compute(Features(features(1, 8, 0)), Features(features(5, 8, 1)))


def test_inception_score_matches_formula_and_needs_logits():
    logits = features(40, 10, 2) * 3
    fake = Features(features(40, 8, 1), logits)
    results = QualityMetrics(8, is_splits=2).compute(Features(features(40, 8, 0)), fake)
    halves = [reference_is(half) for half in logits.double().numpy().reshape(2, 20, 10)]  # the seeded split order
    assert results[IS_MEAN] == pytest.approx(np.mean(halves), rel=0.5)  # splits are random halves ...
    one_split = QualityMetrics(8, is_splits=1).compute(Features(features(40, 8, 0)), fake)
    assert one_split[IS_MEAN] == pytest.approx(reference_is(logits.double().numpy()), rel=1e-6)  # ... one is all
    assert IS_STD in results
    without = QualityMetrics(8).compute(Features(features(40, 8, 0)), Features(fake.features))
    assert IS_MEAN not in without and IS_STD not in without  # no logits: no number, never a made-up one
    off = QualityMetrics(8, inception_score=False).compute(Features(features(40, 8, 0)), fake)
    assert IS_MEAN not in off


def test_to_uint8_recovers_8bit_images_and_rounds_like_png():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    as_loaded = (pixels.float() / 255 - 0.5) / 0.5  # what the data module's transform gives
    assert torch.equal(to_uint8(as_loaded), pixels)
    assert to_uint8(torch.tensor([-2.0, 2.0]).reshape(1, 1, 1, 2)).flatten().tolist() == [0, 255] * 3  # clamped
    assert to_uint8(torch.zeros(2, 1, 4, 4)).shape == (2, 3, 4, 4)  # grayscale -> RGB
