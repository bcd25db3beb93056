"""Torch datasets over image sources."""

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset


class UnalignedDataset(Dataset):
    """Unpaired images of two domains, as CycleGAN trains on them.

    Item `i` is image `i % len(A)` of domain A with an image of domain B: a random one when `random_pairs` (the
    reference's default, drawn from torch's generator so that worker seeding applies), else image `i % len(B)`.
    The length is that of the larger domain.

    Args:
        domain_a: images of domain A (a sequence of PIL images with a `name(i)` method).
        domain_b: images of domain B.
        transform: PIL image -> (3, H, W) tensor.
        random_pairs: pair each A image with a random B image.
    """

    def __init__(
        self,
        domain_a: Sequence[Image.Image],
        domain_b: Sequence[Image.Image],
        transform: Callable[[Image.Image], Tensor],
        random_pairs: bool = True,
    ) -> None:
        self.domain_a, self.domain_b = domain_a, domain_b
        self.transform = transform
        self.random_pairs = random_pairs

    def __len__(self) -> int:
        return max(len(self.domain_a), len(self.domain_b))

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        ia = index % len(self.domain_a)
        ib = int(torch.randint(len(self.domain_b), ())) if self.random_pairs else index % len(self.domain_b)
        return {
            "A": self.transform(self.domain_a[ia]),  # (3, H, W)
            "B": self.transform(self.domain_b[ib]),  # (3, H, W)
            "A_path": self.domain_a.name(ia),
            "B_path": self.domain_b.name(ib),
        }
