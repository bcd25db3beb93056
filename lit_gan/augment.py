"""Differentiable augmentation of everything the discriminators see (`model.augment`).

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training") applies the same
random, differentiable transforms to real and generated images before the discriminator, in both the
discriminator's and the generator's steps, so the discriminator cannot memorise a small training set and the
generator still gets gradients through the transforms. Policies (as the reference code):

- "color": brightness + U(-0.5, 0.5), saturation x U(0, 2) around each pixel's channel mean, contrast
  x U(0.5, 1.5) around the image's mean;
- "translation": integer shifts of up to `translation_ratio` of the height and width, zero filled;
- "cutout": one square of `cutout_ratio` of the height and width zeroed, centred anywhere in the image (clipped at
  the borders).

ADA's adaptive probability (Karras et al. 2020, "Training GANs with Limited Data"): each transform is applied to each
image with probability `p`, and with `adaptive` p follows the overfitting heuristic r_t = E[sign(D(real) -
midpoint)] (see `DiffAugment.observe`). The transforms' parameters are drawn from torch's global generator, which
checkpoints hold, and `p` with its statistics are buffers in the model's state dict: a resumed run continues exactly.
"""

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def brightness(x: Tensor, shift: Tensor) -> Tensor:
    """`x` (B, C, H, W) plus `shift` (B,) per image."""
    return x + shift.view(-1, 1, 1, 1).to(x.dtype)


def saturation(x: Tensor, factor: Tensor, image_channels: int = 3) -> Tensor:
    """Each pixel's distance to its mean over the channels of its image times `factor` (B,): 0 gives grey, 1 keeps
    `x`. `x` (B, C, H, W) holds C / `image_channels` images stacked on channels (e.g. pix2pix's (input, output)),
    each scaled alike."""
    images = x.unflatten(1, (-1, image_channels))  # (B, N, c, H, W)
    mean = images.mean(dim=2, keepdim=True)
    return ((images - mean) * factor.view(-1, 1, 1, 1, 1).to(x.dtype) + mean).flatten(1, 2)


def contrast(x: Tensor, factor: Tensor, image_channels: int = 3) -> Tensor:
    """Each value's distance to its image's mean times `factor` (B,); images stacked on channels as `saturation`."""
    images = x.unflatten(1, (-1, image_channels))  # (B, N, c, H, W)
    mean = images.mean(dim=(2, 3, 4), keepdim=True)
    return ((images - mean) * factor.view(-1, 1, 1, 1, 1).to(x.dtype) + mean).flatten(1, 2)


def translate(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """`x` (B, C, H, W) with each image's content moved down by `dy` and right by `dx` pixels (integers (B,), negative
    moves up or left); what comes in from outside is zero. All channels move together."""
    B, _, H, W = x.shape
    padded = nn.functional.pad(x, [1, 1, 1, 1])  # (B, C, H + 2, W + 2): an index outside lands on the zero border
    rows = (torch.arange(H, device=x.device).view(1, H, 1) - dy.view(B, 1, 1) + 1).clamp(0, H + 1)  # (B, H, 1)
    cols = (torch.arange(W, device=x.device).view(1, 1, W) - dx.view(B, 1, 1) + 1).clamp(0, W + 1)  # (B, 1, W)
    batch = torch.arange(B, device=x.device).view(B, 1, 1)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def cutout(x: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """`x` (B, C, H, W) with the `height` x `width` rectangle from (`top`, `left`) (integers (B,), may lie partly
    outside the image) set to zero in every channel."""
    B, _, H, W = x.shape
    rows = torch.arange(H, device=x.device).view(1, H) - top.view(B, 1)  # (B, H)
    cols = torch.arange(W, device=x.device).view(1, W) - left.view(B, 1)  # (B, W)
    inside = ((rows >= 0) & (rows < height)).unsqueeze(2) & ((cols >= 0) & (cols < width)).unsqueeze(1)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = ("color", "translation", "cutout")
"""The policy names `DiffAugment.policy` accepts, in a comma-separated list."""


class DiffAugment(nn.Module):
    """Random differentiable transforms of every discriminator input, in training only (see the module docstring).

    Set as `model.augment`, the model hooks it in front of each discriminator (`attach`), so real images, fakes, the
    generator's adversarial pass, feature matching and WGAN-GP's interpolates are all augmented, each call with fresh
    parameters, while the discriminator is in training mode; never in validation, samples, predict or export, and
    never the generators' inputs or targets.

    A conditional discriminator's input holds several images stacked on channels (pix2pix: (input, output), 6
    channels): the geometric transforms move all channels alike, and the colour transforms treat each
    `image_channels` group as an image, with the same drawn parameters for every group of a sample (the pair stays
    consistent; each group's own means are used).

    Args:
        policy: comma-separated transforms, applied in this order: "color", "translation", "cutout" (DiffAugment's
            recommended set is all three; "" disables augmentation).
        p: probability that each transform (brightness, saturation, contrast, translation, cutout) is applied to each
            image; null: 1 (always, as DiffAugment), or 0 at the start with `adaptive` (as ADA).
        adaptive: adjust `p` from the discriminator's predictions on real images (ADA).
        target: ADA's target for r_t = E[sign(D(real) - midpoint)]: p rises while r_t is above it (the paper: 0.6).
        interval: ADA adjusts p every this many discriminator optimizer steps (the paper: 4; CycleGAN steps both of
            its discriminators in one).
        ada_kimg: ADA's speed: p can move from 0 to 1 in this many thousand real images judged (each
            discriminator's count: CycleGAN's two add up) (the paper: 500, for large runs; 100 suits small datasets).
        translation_ratio: the largest shift, as a fraction of the height and the width (DiffAugment: 1/8).
        cutout_ratio: the cut-out square's side, as a fraction of the height and the width (DiffAugment: 1/2).
        image_channels: channels per image in the discriminator's input, for the colour transforms (3 for RGB, 1 for
            greyscale); the input's channels must be a multiple of it.
    """

    def __init__(
        self,
        policy: str = "color,translation,cutout",
        p: float | None = None,
        adaptive: bool = False,
        target: float = 0.6,
        interval: int = 4,
        ada_kimg: float = 100.0,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        self.policies = [name.strip() for name in policy.split(",") if name.strip()]
        unknown = [name for name in self.policies if name not in POLICIES]
        if unknown:
            raise ValueError(f"model.augment.policy: unknown {unknown}; valid: comma-separated {', '.join(POLICIES)}")
        p = (0.0 if adaptive else 1.0) if p is None else p
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"model.augment.p must be in [0, 1], got {p}")
        if interval < 1 or ada_kimg <= 0:
            raise ValueError(f"model.augment: need interval >= 1 and ada_kimg > 0, got {interval} and {ada_kimg}")
        self.adaptive, self.target, self.interval, self.ada_kimg = adaptive, target, interval, ada_kimg
        self.translation_ratio, self.cutout_ratio, self.image_channels = translation_ratio, cutout_ratio, image_channels
        # buffers, so checkpoints hold them: the probability each transform is applied to each image (adjusted by
        # ADA), and ADA's accumulators since p's last adjustment: (sum of sign(D(real) - midpoint), predictions,
        # real images, discriminator steps)
        self.register_buffer("p", torch.tensor(p))
        self.register_buffer("stats", torch.zeros(4))

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policies)!r}, adaptive={self.adaptive}"

    # -- the transforms -----------------------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        """`x` (B, C, H, W) with each policy's transforms, each applied per image with probability `p`."""
        transforms = {"color": self._color, "translation": self._translation, "cutout": self._cutout}
        for name in self.policies:
            x = transforms[name](x)
        return x

    def _where(self, x: Tensor, transformed: Tensor) -> Tensor:
        """`transformed`'s images with probability p each, else `x`'s (exactly)."""
        applied = torch.rand(x.shape[0], device=x.device) < self.p  # (B,)
        return torch.where(applied.view(-1, 1, 1, 1), transformed, x)

    def _uniform(self, x: Tensor, low: float, high: float) -> Tensor:
        return torch.rand(x.shape[0], device=x.device) * (high - low) + low  # (B,)

    def _color(self, x: Tensor) -> Tensor:
        c = self.image_channels
        if x.shape[1] % self.image_channels:
            raise ValueError(
                f"model.augment.image_channels is {self.image_channels}, but the discriminator's input has "
                f"{x.shape[1]} channels: set image_channels to the channels of one image (3 for RGB, 1 for greyscale)"
            )
        x = self._where(x, brightness(x, self._uniform(x, -0.5, 0.5)))
        x = self._where(x, saturation(x, self._uniform(x, 0.0, 2.0), c))
        return self._where(x, contrast(x, self._uniform(x, 0.5, 1.5), c))

    def _translation(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        max_y, max_x = int(H * self.translation_ratio), int(W * self.translation_ratio)
        dy = torch.randint(-max_y, max_y + 1, (B,), device=x.device)
        dx = torch.randint(-max_x, max_x + 1, (B,), device=x.device)
        return self._where(x, translate(x, dy, dx))

    def _cutout(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        height, width = int(H * self.cutout_ratio), int(W * self.cutout_ratio)
        # the centre anywhere in the image (the reference: a square partly outside is clipped)
        top = torch.randint(0, H + 1 - height % 2, (B,), device=x.device) - height // 2
        left = torch.randint(0, W + 1 - width % 2, (B,), device=x.device) - width // 2
        return self._where(x, cutout(x, top, left, height, width))

    # -- in front of the discriminators -------------------------------------------------------------------------------

    def attach(self, discriminator: nn.Module) -> RemovableHandle:
        """Augment `discriminator`'s input (its first argument) whenever it runs in training mode."""
        return discriminator.register_forward_pre_hook(self._augment_input)

    def _augment_input(self, discriminator: nn.Module, args: tuple) -> tuple | None:
        if not discriminator.training or not self.policies:
            return None
        return (self(args[0]), *args[1:])

    # -- ADA --------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def observe(self, pred_real: Tensor, midpoint: float) -> None:
        """Accumulate the discriminator's predictions (scores) on a batch of real images for ADA's r_t; `midpoint`
        is the score between the loss's fake and real targets (`GANLoss.midpoint`). Summed over every process."""
        if not self.adaptive:
            return
        signs = torch.sign(pred_real.detach().float() - midpoint)
        step = torch.stack([signs.sum(), signs.new_tensor(signs.numel()), signs.new_tensor(pred_real.shape[0])])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(step)  # every process adjusts p alike
        self.stats[:3] += step

    @torch.no_grad()
    def step(self) -> None:
        """Count a discriminator step; every `interval` steps move p up (r_t > target: D is overconfident on reals) or
        down by the images judged since the last adjustment / (ada_kimg * 1000), within [0, 1]. On the device,
        without a host synchronisation."""
        if not self.adaptive:
            return
        self.stats[3] += 1
        signs, count, images, steps = self.stats
        r_t = signs / count.clamp(min=1)
        adjust = torch.where(r_t > self.target, 1.0, -1.0) * images / (self.ada_kimg * 1000)
        due = (steps >= self.interval) & (count > 0)
        self.p.copy_(torch.where(due, (self.p + adjust).clamp(0.0, 1.0), self.p))
        self.stats.copy_(torch.where(steps >= self.interval, torch.zeros_like(self.stats), self.stats))


AugmentArg = DiffAugment | str | None
"""`model.augment`: a `DiffAugment`, or just its policy (e.g. "color,translation,cutout"), or null."""


def build_augment(value: AugmentArg) -> DiffAugment | None:
    """`model.augment` as a `DiffAugment` (a policy string gives one with the other defaults), or None."""
    return DiffAugment(value) if isinstance(value, str) else value
