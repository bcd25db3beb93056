"""SSIM and PSNR per image against independent numpy references; LPIPS's weight file."""

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from lit_gan.metrics.similarity import lpips_weights_file, psnr, ssim


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004: SSIM of two (C, H, W) images in [0, 1] with an 11 x 11 Gaussian window (sigma 1.5), K1 0.01,
    K2 0.03, data range 1, over the valid windows; the mean over the map and the channels."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()  # (11, 11)

    def filt(image: np.ndarray) -> np.ndarray:  # (H, W) -> (H - 10, W - 10)
        return np.einsum("ijkl,kl->ij", sliding_window_view(image, (11, 11)), window)

    c1, c2 = 0.01**2, 0.03**2
    maps = []
    for a, b in zip(x.astype(np.float64), y.astype(np.float64)):
        mu_a, mu_b = filt(a), filt(b)
        var_a, var_b, cov = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
        maps.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(maps))


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(C, H, W) image pairs in [0, 1]: random noise, noise against a noisy copy, a gradient and a shifted copy."""
    rng = np.random.default_rng(0)
    noise = rng.random((3, 32, 40))
    ramp = np.broadcast_to(np.linspace(0, 1, 48), (1, 36, 48)) * np.linspace(0.2, 1, 36)[None, :, None]
    rings = 0.5 + 0.5 * np.sin(np.hypot(*np.meshgrid(np.arange(48), np.arange(36))) / 3)[None]
    structured = np.concatenate([ramp, rings, ramp * rings])  # (3, 36, 48)
    return {
        "random": (noise, rng.random((3, 32, 40))),
        "noisy copy": (noise, np.clip(noise + rng.normal(0, 0.1, noise.shape), 0, 1)),
        "shifted": (structured, np.roll(structured, 3, axis=2)),
        "grayscale": (structured[:1], 0.8 * structured[:1] + 0.1),
    }


def as_batch(*images: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.stack(images), dtype=torch.float32) * 2 - 1  # (B, C, H, W) in [-1, 1]


@pytest.mark.parametrize("name", list(pairs()))
def test_ssim_is_wang_et_al_on_images_in_0_1(name):
    x, y = pairs()[name]
    x, y = (as_batch(i).numpy()[0] / 2 + 0.5 for i in (x, y))  # the float32 images the function sees
    assert float(ssim(as_batch(x), as_batch(y))[0]) == pytest.approx(reference_ssim(x, y), abs=1e-4)


@pytest.mark.parametrize("name", list(pairs()))
def test_psnr_is_10_log10_of_one_over_the_mse(name):
    x, y = pairs()[name]
    x, y = (as_batch(i).numpy()[0] / 2 + 0.5 for i in (x, y))
    mse = np.mean((x.astype(np.float64) - y) ** 2)
    assert float(psnr(as_batch(x), as_batch(y))[0]) == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)


def test_scores_are_per_image_whatever_the_batch():
    images = list(pairs().values())[:3]
    crop = [(x[:, :32, :32], y[:, :32, :32]) for x, y in images]
    xs, ys = as_batch(*(x for x, _ in crop)), as_batch(*(y for _, y in crop))
    for score in (ssim, psnr):
        together = score(xs, ys)
        assert together.shape == (3,)
        alone = torch.cat([score(xs[i : i + 1], ys[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-6)


def test_identical_images_score_one_and_100_db():
    x = as_batch(*(x for x, _ in list(pairs().values())[:2]))
    assert torch.allclose(ssim(x, x), torch.ones(2)) and torch.allclose(psnr(x, x), torch.full((2,), 100.0))


def test_different_channel_counts_compare_channel_means():
    x, _ = pairs()["shifted"]
    rgb, gray = as_batch(x), as_batch(x.mean(0, keepdims=True))
    assert float(ssim(rgb, gray)[0]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_weight_file_is_in_the_torch_hub_cache(net, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    url, path = lpips_weights_file(net)
    assert url.startswith("https://download.pytorch.org/models/") and path == str(
        tmp_path / "checkpoints" / url.split("/")[-1]
    )
