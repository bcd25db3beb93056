"""A generator that changes a photo's colours and tones only: per-pixel affine colour transforms from a bilateral grid
(HDRNet: Gharbi et al., "Deep Bilateral Learning for Real-Time Image Enhancement", SIGGRAPH 2017)."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


class BilateralColorGenerator(nn.Module):
    """Photo -> the same photo in another palette, learnt in minutes on a CPU.

    A small network looks at a `guide_size` px copy of the photo and predicts a bilateral grid of affine colour
    transforms: `grid_size` x `grid_size` cells over the image, `luma_bins` brightness levels in each, a 3x4 matrix
    in each. Every output pixel is its own colour times the matrix interpolated at its place and brightness (trilinear
    "slicing"). So the output keeps every edge and texture of the photo at any size (predict stylises photos of any
    size with a grid learnt at 128 px), varies smoothly in space, follows the photo's edges through the brightness axis
    (no halos where a bright sky meets a dark cliff), and cannot draw anything (no stripes, checkerboards or blobs);
    what it learns is a style's colours and tones, not its textures or strokes. The grid starts as the identity: the
    first outputs are the photos.

    For CUT: `features(x, layers)` gives the guide network's activations (layer 0: the guide image itself, then one
    per convolution block).

    Args:
        in_channels: input channels (3).
        out_channels: output channels (3; must equal in_channels).
        guide_size: side of the low-resolution copy the grid is predicted from.
        grid_size: grid cells along each side (guide_size / 4).
        luma_bins: brightness levels of the grid.
        width: channels of the guide network's first block (doubling once).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        guide_size: int = 64,
        grid_size: int = 16,
        luma_bins: int = 8,
        width: int = 16,
    ) -> None:
        super().__init__()
        if in_channels != 3 or out_channels != 3:
            raise ValueError(f"BilateralColorGenerator transforms RGB colours: in/out channels 3, got {in_channels}/"
                             f"{out_channels}")  # fmt: skip
        if guide_size != 4 * grid_size or grid_size < 4 or luma_bins < 2:
            raise ValueError(
                f"BilateralColorGenerator needs guide_size = 4 x grid_size (grid_size >= 4) and luma_bins >= 2, got "
                f"guide_size {guide_size}, grid_size {grid_size}, luma_bins {luma_bins}"
            )
        self.guide_size, self.grid_size, self.luma_bins = guide_size, grid_size, luma_bins
        self.in_channels, self.out_channels = in_channels, out_channels  # read by export's description
        c = width

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2))

        # features(): 0 the guide, 1-3 these blocks (grid_size x grid_size at the end)
        self.blocks = nn.ModuleList([block(3, c, 2), block(c, 2 * c, 2), block(2 * c, 2 * c, 1)])
        self.global_path = nn.Sequential(block(2 * c, 2 * c, 2), block(2 * c, 2 * c, 2), nn.AdaptiveAvgPool2d(1))
        self.global_linear = nn.Linear(2 * c, 2 * c)
        self.output = nn.Conv2d(2 * c, 12 * luma_bins, 1)  # a 3x4 matrix per cell and brightness level
        identity = torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1).flatten()  # (12,): [A | b], row-major
        self.register_buffer("identity", identity.view(1, 12, 1, 1, 1), persistent=False)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.after_init_weights()

    @torch.no_grad()
    def after_init_weights(self) -> None:
        """Kaiming-initialise the guide network (its activations keep their scale through the blocks, so that the
        grid learns from the first step) and zero the output: the identity transform everywhere. Called on building
        and by `lit_gan.networks.init_weights` after drawing."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear) and module is not self.output:
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def guide(self, x: Tensor) -> Tensor:
        """The low-resolution copy of `x` the grid is predicted from: (B, 3, guide_size, guide_size)."""
        return F.interpolate(x, size=(self.guide_size, self.guide_size), mode="bilinear", antialias=True,
                             align_corners=False)  # fmt: skip

    def features(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """The guide network's activations at `layers` (0: the guide image, 1-3: its blocks), for CUT's PatchNCE."""
        wanted, feats = set(layers), []
        h = self.guide(x)
        for index in range(len(self.blocks) + 1):
            if index > 0:
                h = self.blocks[index - 1](h)
            if index in wanted:
                feats.append(h)
            if len(feats) == len(wanted):
                break
        return feats

    def grid(self, x: Tensor) -> Tensor:
        """The bilateral grid of `x`: (B, 12, luma_bins, grid_size, grid_size) affine coefficients."""
        (local,) = self.features(x, [len(self.blocks)])
        global_features = self.global_linear(self.global_path(local).flatten(1))[:, :, None, None]
        fused = F.leaky_relu(local + global_features, 0.2)
        b = x.shape[0]
        coefficients = self.output(fused).view(b, 12, self.luma_bins, self.grid_size, self.grid_size)
        return coefficients + self.identity

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1], any H and W -> (B, 3, H, W) in [-1, 1]."""
        b, _, h, w = x.shape
        grid = self.grid(x)
        luma = (x * self.luma).sum(1)  # (B, H, W) in [-1, 1]: the brightness axis of the grid
        ys = _centres(h, x).view(1, h, 1).expand(b, h, w)
        xs = _centres(w, x).view(1, 1, w).expand(b, h, w)
        where = torch.stack([xs, ys, luma.clamp(-1, 1)], dim=-1).unsqueeze(1)  # (B, 1, H, W, 3): x, y, depth
        coefficients = F.grid_sample(grid, where, mode="bilinear", padding_mode="border", align_corners=True)
        coefficients = coefficients.view(b, 3, 4, h, w)  # per pixel: [A | b]
        out = (coefficients[:, :, :3] * x.unsqueeze(1)).sum(2) + coefficients[:, :, 3]
        return out.clamp(-1, 1)


def _centres(n: int, like: Tensor) -> Tensor:
    """n evenly spaced positions from -1 to 1: `torch.linspace(-1, 1, n)`; under `torch.export` the same positions (to
    6e-8) written so that the exported graph keeps n dynamic (linspace would fix it to the example's)."""
    if torch.compiler.is_exporting():
        return torch.arange(n, device=like.device, dtype=like.dtype) * (2 / max(n - 1, 1)) - 1
    return torch.linspace(-1, 1, n, device=like.device, dtype=like.dtype)
