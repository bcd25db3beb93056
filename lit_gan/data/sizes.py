"""Image sizes the data settings produce, checked against themselves and against the network that will use them."""

from dataclasses import dataclass

from torch import nn

from lit_gan.contracts import FixedSizeNetwork, SizedNetwork

DEFAULT_MULTIPLE = 4  # "none" rounds to this when no model states its own multiple (the reference's base=4)
SYNTHETIC_MIN_SIZE = 16  # the renderer's smallest image


@dataclass(frozen=True)
class NetworkSizes:
    """What a model needs of its images, read from duck-typed model attributes.

    Args:
        multiple: height and width must be multiples of this (`model.size_multiple`; 1 when absent).
        image_size: height and width must equal this (`model.image_size`, e.g. DCGAN); None for any size.
        network: how errors name the network, e.g. "ResnetGenerator in CycleGAN".
        stated: whether the model stated a multiple (else "none" rounds to `DEFAULT_MULTIPLE`).
    """

    multiple: int = 1
    image_size: int | None = None
    network: str = "the model"
    stated: bool = False

    @property
    def rounding(self) -> int:
        """The multiple that preprocess "none" rounds image sizes to."""
        return self.multiple if self.stated else DEFAULT_MULTIPLE


def network_sizes(model: object) -> NetworkSizes:
    """The size rules of `model`: its `size_multiple` and `image_size` attributes, where it has them."""
    multiple = model.size_multiple if isinstance(model, SizedNetwork) else None
    image_size = model.image_size if isinstance(model, FixedSizeNetwork) else None
    network = type(model).__name__
    if isinstance(model, nn.Module):  # name the sub-network that sets the rule, e.g. the generator
        inner = [m for m in model.modules() if m is not model]
        if multiple is not None:
            child = next((m for m in inner if isinstance(m, SizedNetwork) and m.size_multiple == multiple), None)
        else:
            child = next((m for m in inner if isinstance(m, FixedSizeNetwork) and m.image_size == image_size), None)
        if child is not None:
            network = f"{type(child).__name__} in {network}"
    image_size = None if image_size is None else int(image_size)
    return NetworkSizes(int(multiple or 1), image_size, network, stated=multiple is not None)


def check_settings(preprocess: str, load_size: int, crop_size: int, synthetic: bool) -> None:
    """Checks of the data settings alone (no model needed), run when the data module is built.

    Raises:
        ValueError: naming the data.* key and a valid value.
    """
    if crop_size < 1 or load_size < 1:
        raise ValueError(f"data.crop_size and data.load_size must be positive, got {crop_size} and {load_size}")
    if preprocess in ("resize_and_crop", "scale_width") and crop_size > load_size:
        raise ValueError(
            f"data.crop_size ({crop_size}) is larger than data.load_size ({load_size}); "
            "set load_size >= crop_size (the reference uses 286 and 256)"
        )
    render = load_size if preprocess in ("resize_and_crop", "scale_width") else crop_size
    if synthetic and render < SYNTHETIC_MIN_SIZE:
        key = "data.load_size" if render == load_size else "data.crop_size"
        raise ValueError(f"{key} ({render}) is too small for the synthetic dataset; use {SYNTHETIC_MIN_SIZE} or more")


def check_network_sizes(preprocess: str, crop_size: int, sizes: NetworkSizes) -> None:
    """Checks that the images the settings produce fit the network; for preprocess "none" the transform rounds sizes.

    Raises:
        ValueError: naming data.crop_size or data.preprocess, what the network needs and a value that works.
    """
    need = sizes.image_size
    if need is not None and preprocess == "none":
        raise ValueError(
            f"data.preprocess none keeps each image's own size, but {sizes.network} needs {need}x{need} images "
            f"(model.image_size); use data.preprocess: resize_and_crop with data.crop_size: {need}"
        )
    if need is not None and crop_size != need:
        raise ValueError(
            f"data.crop_size {crop_size} differs from the {need}x{need} images {sizes.network} works on "
            f"(model.image_size); set data.crop_size: {need} (and data.load_size >= {need})"
        )
    m = sizes.multiple
    if preprocess != "none" and crop_size % m:
        below, above = crop_size // m * m, (crop_size // m + 1) * m
        options = f"{below} or {above}" if below else str(above)
        raise ValueError(
            f"data.crop_size {crop_size} is not a multiple of {m}, which {sizes.network} needs "
            f"(model.size_multiple); use {options} (and data.load_size at least as large)"
        )
