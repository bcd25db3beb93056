"""Per-image similarity of generated images to reference images: SSIM, PSNR and LPIPS.

The reference is the paired target (pix2pix on aligned data: how close the translation is to the truth) or the input
itself (unpaired translation: how much of the content the translation preserves). Every function returns one number
per image, so that the caller averages over all images: the results do not depend on the batch size or on how the
images are spread over processes.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gan.metric_keys import LPIPS, PSNR, SSIM
from lit_gan.metrics.inception import hub_cache_path

SIMILARITY_KEYS = (SSIM, PSNR, LPIPS)
MIN_MSE = 1e-10  # PSNR of identical images: 100 dB instead of infinity


def to_unit(images: Tensor) -> Tensor:
    """(B, C, H, W) images in [-1, 1] -> float64 in [0, 1] (clamped)."""
    return ((images.detach().double() + 1) / 2).clamp_(0, 1)


def comparable(images: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Both in [0, 1], float64; with different channel counts (e.g. grayscale -> RGB) both become their channel
    means, (B, 1, H, W)."""
    images, reference = to_unit(images), to_unit(reference)
    if images.shape[1] != reference.shape[1]:
        images, reference = images.mean(1, keepdim=True), reference.mean(1, keepdim=True)
    return images, reference


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """(size, size) float64 Gaussian weights summing to 1."""
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    return torch.outer(g, g) / torch.outer(g, g).sum()


def ssim(images: Tensor, reference: Tensor, k1: float = 0.01, k2: float = 0.03) -> Tensor:
    """(B,) SSIM of each image to its reference, both (B, C, H, W) in [-1, 1]: Wang et al. 2004 on the images in
    [0, 1] (data range 1) with an 11 x 11 Gaussian window (sigma 1.5) over the valid windows (as their MATLAB code;
    torchmetrics >= 1.5 also averages windows over reflected borders), averaged over the map and channels."""
    x, y = comparable(images, reference)
    if min(x.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11 x 11 px, got {tuple(x.shape[-2:])}")
    channels = x.shape[1]
    window = gaussian_window().to(x.device).expand(channels, 1, 11, 11)  # one filter per channel

    def filt(z: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, H - 10, W - 10)
        return F.conv2d(z, window, groups=channels)

    mu_x, mu_y = filt(x), filt(y)
    var_x, var_y, cov = filt(x * x) - mu_x**2, filt(y * y) - mu_y**2, filt(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    ssim_map = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1).float().cpu()  # (B,)


def psnr(images: Tensor, reference: Tensor) -> Tensor:
    """(B,) PSNR in dB of each image to its reference, both (B, C, H, W) in [-1, 1]: 10 log10(1 / MSE) in [0, 1]."""
    x, y = comparable(images, reference)
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(MIN_MSE)  # (B,)
    return (10 * torch.log10(1 / mse)).float().cpu()


def lpips_weights_file(net: str) -> tuple[str, str]:
    """(URL, local path in the torch.hub cache) of the torchvision backbone LPIPS `net` ("alex", "vgg") needs."""
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    url = {"alex": AlexNet_Weights, "vgg": VGG16_Weights}[net].DEFAULT.url
    return url, str(hub_cache_path(url))


def load_lpips(net: str) -> nn.Module:
    """torchmetrics' LPIPS network with the pretrained `net` backbone ("alex" or "vgg"); raises (e.g. URLError,
    OSError) when torchvision cannot find or download the backbone's weights."""
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True).net.eval().requires_grad_(False)


def lpips(network: nn.Module, images: Tensor, reference: Tensor) -> Tensor:
    """(B,) LPIPS distance of each image to its reference, both (B, C, H, W) in [-1, 1] (grayscale as RGB)."""
    x, y = comparable(images, reference)
    x, y = x.expand(-1, 3, -1, -1).float(), y.expand(-1, 3, -1, -1).float()  # no-op for RGB
    return network(x, y, normalize=True).flatten().float().cpu()
