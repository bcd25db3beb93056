"""History of generated images for discriminator updates (Shrivastava et al. 2017), with reference semantics."""

from typing import Any

import torch
from torch import Tensor


class ImagePool:
    """A buffer of up to `pool_size` previously generated images.

    `query` takes a batch of fresh fakes and returns a batch of the same size: until the pool is full each image is
    stored and returned as is; after that, each image is, with probability 0.5, swapped for a random stored one
    (which is returned, the new one taking its place), and otherwise returned as is. A size of 0 passes images
    through. Draws come from the pool's own seeded generator, and `state_dict` holds both the images and the
    generator state, so a resumed run continues exactly.

    Args:
        pool_size: images kept; 0 disables the pool.
        seed: seed of the pool's random generator.
    """

    def __init__(self, pool_size: int = 50, seed: int = 0) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.seed = seed
        self.images: list[Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Draw from `seed` from now on (each process of a distributed run uses its own)."""
        self.seed = seed
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """(B, C, H, W) fresh fakes -> (B, C, H, W) fakes for the discriminator, detached."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                idx = int(torch.randint(self.pool_size, (), generator=self.generator))
                out.append(self.images[idx].to(image.device))
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """Images (on CPU) and generator state, for checkpoints."""
        images = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"pool_size": self.pool_size, "images": images, "rng_state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore what `state_dict` returned, moving images to `device`."""
        self.images = [image.to(device) for image in state["images"]][: self.pool_size]
        self.generator.set_state(state["rng_state"])
