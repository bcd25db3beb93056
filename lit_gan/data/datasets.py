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


class AlignedDataset(Dataset):
    """Aligned pairs, as pix2pix trains on them: item `i` is pair `i`, both images cropped and flipped alike.

    Args:
        pairs: (A, B) image pairs (a sequence with a `name(i)` method), e.g. files holding A|B side by side.
        transform: PIL images -> (3, H, W) tensors, applying the same random parameters to all images of one call.
    """

    def __init__(self, pairs: Sequence[tuple[Image.Image, Image.Image]], transform: Callable) -> None:
        self.pairs, self.transform = pairs, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        a, b = self.transform(*self.pairs[index])  # one call: the same crop and flip for both
        name = self.pairs.name(index)
        return {"A": a, "B": b, "A_path": name, "B_path": name}  # (3, H, W) each


class SingleDataset(Dataset):
    """Images of one domain (DCGAN training, prediction): item `i` is {"A": image `i`, "A_path": its name}.

    Args:
        images: the images (a sequence of PIL images with a `name(i)` method).
        transform: PIL image -> (3, H, W) tensor.
    """

    def __init__(self, images: Sequence[Image.Image], transform: Callable[[Image.Image], Tensor]) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        return {"A": self.transform(self.images[index]), "A_path": self.images.name(index)}  # (3, H, W)


class MultiDomainDataset(Dataset):
    """Training items of many domains, drawn as StarGAN v2's loaders draw them (core/data_loader.py): a source image
    and, independently, a reference image with a second one of the same domain. Each is drawn from a domain chosen
    uniformly, then uniformly within it: the reference's balanced `WeightedRandomSampler` (weights 1 / the domain's
    image count, with replacement). The second reference is the first's fixed partner, from a permutation of its domain
    drawn once from `seed` (the reference's `ReferenceDataset`). Draws use torch's generator (seeded per item by
    `SeededItems`, so a resumed run draws the same); each image gets its own random crop and flip. An epoch has as
    many items as there are training images.

    Items: "A" (3, H, W), "domain" (int64 scalar), "A_path", "ref", "ref2" (3, H, W), "ref_domain", "ref_path".

    Args:
        sources: the images of each domain (sequences of PIL images with a `name(i)` method), in label order.
        transform: PIL image -> (3, H, W) tensor.
        seed: seed of the reference partners.
    """

    def __init__(self, sources: Sequence[Sequence[Image.Image]], transform: Callable, seed: int = 0) -> None:
        self.sources, self.transform = sources, transform
        rng = torch.Generator().manual_seed(seed)
        self.partners = [torch.randperm(len(images), generator=rng).tolist() for images in sources]

    def __len__(self) -> int:
        return sum(len(images) for images in self.sources)

    def _draw(self) -> tuple[int, int]:
        """(domain, image index): a domain uniformly, then an image of it uniformly."""
        domain = int(torch.randint(len(self.sources), ()))
        return domain, int(torch.randint(len(self.sources[domain]), ()))

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        (d, i), (r, j) = self._draw(), self._draw()
        source, refs = self.sources[d], self.sources[r]
        return {
            "A": self.transform(source[i]),  # (3, H, W)
            "domain": torch.tensor(d),
            "A_path": source.name(i),
            "ref": self.transform(refs[j]),
            "ref2": self.transform(refs[self.partners[r][j]]),
            "ref_domain": torch.tensor(r),
            "ref_path": refs.name(j),
        }


class DomainImages(Dataset):
    """Held-out images of many domains, each once, the domains taken in turn (item 0 of each domain, then item 1 of
    each, ...), so that the first items show every domain. Items: "A" (3, H, W), "domain" (int64 scalar),
    "A_path".

    Args:
        sources: the images of each domain, in label order.
        transform: PIL image -> (3, H, W) tensor.
    """

    def __init__(self, sources: Sequence[Sequence[Image.Image]], transform: Callable) -> None:
        self.sources, self.transform = sources, transform
        longest = max(len(images) for images in sources)
        self.order = [(d, i) for i in range(longest) for d, images in enumerate(sources) if i < len(images)]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        d, i = self.order[index]
        images = self.sources[d]
        return {"A": self.transform(images[i]), "domain": torch.tensor(d), "A_path": images.name(i)}


def make_dataset(
    mode: str, sources: tuple[Sequence, ...], transform: Callable, random_pairs: bool = False, train: bool = False
) -> Dataset:
    """The dataset of `mode` ("unaligned", "aligned", "single" or "domains") over the sources of one split.

    Args:
        mode: the data module's `mode`.
        sources: (domain A, domain B) for unaligned; (pairs,) for aligned; (images,) for single; one per domain for
            domains.
        transform: the split's transform.
        random_pairs: unaligned only: pair each A image with a random B image.
        train: domains only: the training items (source and references, `MultiDomainDataset`), else the held-out
            images (`DomainImages`).
    """
    if mode == "unaligned":
        return UnalignedDataset(*sources, transform, random_pairs)
    if mode == "domains":
        return MultiDomainDataset(sources, transform) if train else DomainImages(sources, transform)
    return {"aligned": AlignedDataset, "single": SingleDataset}[mode](*sources, transform)


class Downscaled(Dataset):
    """The items of `dataset` with their images box-downscaled by `factor` (each output pixel the mean of a factor x
    factor block): the training images of a progressive GAN's phase, made from the full-resolution crops as the
    official dataset tool makes its lower resolutions (repeated 2x2 averaging, which this equals).

    Args:
        dataset: items {"A": (C, H, W) image, ...}; H and W multiples of `factor`.
        factor: the downscaling factor, a power of two.
    """

    def __init__(self, dataset: Dataset, factor: int) -> None:
        self.dataset, self.factor = dataset, factor

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index):
        item = self.dataset[index]
        return {k: box_downscale(v, self.factor) if isinstance(v, Tensor) else v for k, v in item.items()}


def box_downscale(images: Tensor, factor: int) -> Tensor:
    """(..., C, H, W) images averaged over `factor` x `factor` blocks -> (..., C, H / factor, W / factor)."""
    if factor == 1:
        return images
    *lead, c, h, w = images.shape
    pooled = torch.nn.functional.avg_pool2d(images.reshape(-1, c, h, w), factor)  # (N, C, H / factor, W / factor)
    return pooled.reshape(*lead, c, h // factor, w // factor)
