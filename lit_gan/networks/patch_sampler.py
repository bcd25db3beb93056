"""CUT's patch sampler ("netF", Park et al. 2020): picks the same random locations in each feature map of a query and
a key image and projects the features there through a small MLP per layer onto the unit sphere, for PatchNCE."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class PatchSampler(nn.Module):
    """Samples `num_patches` locations per feature map and embeds each location's feature vector.

    One MLP (Linear(C_l, channels), ReLU, Linear(channels, channels)) per feature layer, then L2 normalization, as the
    reference's `PatchSampleF` (netF "mlp_sample"); without `mlp`, the sampled features are only normalized
    (netF "sample"). The MLPs' input sizes are those of the generator's features: `build(in_channels)` creates them
    once the model knows them (CUT runs its generator once on a small probe image when it is built, so the sampler
    has its parameters before the optimizers are made and its weights are in every checkpoint). With the reference
    settings (256 channels, ResNet features of 3, 128, 256, 256 and 256 channels) it has 560,384 parameters.

    Args:
        channels: width of each MLP (the reference's netF_nc).
        mlp: project the features through the MLPs (netF "mlp_sample"); False only samples and normalizes them.
    """

    def __init__(self, channels: int = 256, mlp: bool = True) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"PatchSampler channels must be >= 1, got {channels}")
        self.channels, self.use_mlp = channels, mlp
        self.mlps = nn.ModuleList()
        self.in_channels: tuple[int, ...] | None = None

    def build(self, in_channels: Sequence[int]) -> "PatchSampler":
        """Create one MLP per feature layer, with `in_channels[l]` inputs (call once, before training)."""
        if self.in_channels is not None:
            raise RuntimeError(f"PatchSampler is already built for feature channels {self.in_channels}")
        self.in_channels = tuple(in_channels)
        if self.use_mlp:
            for c in self.in_channels:
                self.mlps.append(
                    nn.Sequential(nn.Linear(c, self.channels), nn.ReLU(), nn.Linear(self.channels, self.channels))
                )
        return self

    def forward(
        self,
        feats: Sequence[Tensor],
        num_patches: int,
        patch_ids: Sequence[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Embed `num_patches` locations of each (B, C_l, H_l, W_l) feature map (the same locations for every image
        of the batch): at `patch_ids` when given (those of the key image, for the query), else drawn at random
        (torch.randperm, from `generator` or torch's global generator). Returns the embeddings, each
        (B * num_patches, channels) with unit L2 norm (image-major), and the locations used."""
        if self.in_channels is None:
            raise RuntimeError("PatchSampler.build(in_channels) must be called before its first use")
        if len(feats) != len(self.in_channels):
            raise ValueError(f"PatchSampler was built for {len(self.in_channels)} feature maps, got {len(feats)}")
        embedded, ids = [], []
        for index, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H * W, C)
            if patch_ids is not None:
                chosen = patch_ids[index]
            else:
                perm = torch.randperm(flat.shape[1], generator=generator, device="cpu" if generator else feat.device)
                chosen = perm[: min(num_patches, flat.shape[1])].to(feat.device)
            sample = flat[:, chosen, :].flatten(0, 1)  # (B * P, C)
            if self.use_mlp:
                sample = self.mlps[index](sample)
            # The reference's x / (||x|| + 1e-7), with a norm whose gradient at a zero vector is 0, not NaN: sqrt of a
            # zero sum (all channels of a location zero, e.g. dead ReLUs of a narrow generator) made the loss NaN.
            embedded.append(sample / (torch.linalg.vector_norm(sample, dim=1, keepdim=True) + 1e-7))
            ids.append(chosen)
        return embedded, ids

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mlp={self.use_mlp}, in_channels={self.in_channels}"
