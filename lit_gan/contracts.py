"""What the callbacks, predict and export need from a model and from a data module, as typed `Protocol`s.

A model or data module of another kind (your own LightningModule, a data module of your own) works with lit_gan's
callbacks when it has these methods; `isinstance(x, Protocol)` checks it (the callbacks fail early, naming what is
missing, instead of failing at the first missing attribute mid-run).
"""

from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from torch import Tensor, nn
from torch.utils.data import Dataset


class Direction(NamedTuple):
    """What one of a model's generators does, for metrics, predict and export."""

    source: str | None
    """The domain ("A", "B") whose images it translates; None when it generates from noise."""
    target: str
    """The domain whose held-out images its outputs are compared with."""


@runtime_checkable
class ImageGenerator(Protocol):
    """A model that makes images: sample grids, FID/KID/IS, predict and export read it through these methods."""

    def directions(self) -> dict[str, Direction]:
        """Each direction's name (e.g. "AtoB", "samples") -> what it translates and what it is compared with."""
        ...

    def translator(self, direction: str) -> nn.Module:
        """The network that makes `direction`'s images for samples, evaluation and inference (an EMA copy when
        the model keeps one)."""
        ...

    def generate(self, direction: str, source: Tensor) -> Tensor:
        """Images of `direction` in [-1, 1]: translations of (B, C, H, W) `source` images, or, from noise, the samples
        numbered `source` ((B,) int64; sample i is the same on every call)."""
        ...

    def sample_images(self, batch: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        """Columns of a sample grid per name, each (N, C, H, W) in [-1, 1]."""
        ...


@runtime_checkable
class StyleGuided(Protocol):
    """A model whose translations follow a style chosen per image, by a latent code or by a reference image (StarGAN
    v2). The metrics score each kind of guide (e.g. `val/fid_latent`, `val/fid_ref`), each image with its own style,
    as the model's paper reports them."""

    def guides(self) -> tuple[str, ...]:
        """The kinds of guide, e.g. ("latent", "ref"); "latent" draws codes by number, the others take references."""
        ...

    def generate_guided(
        self, direction: str, source: Tensor, guide: str, index: Tensor, reference: Tensor | None = None
    ) -> Tensor:
        """Translations of (B, C, H, W) `source` images into `direction`'s target, image b with the style of latent
        code number `index[b]` ((B,) int64; the same code on every call) for guide "latent", else of the (B, C, H, W)
        `reference` image b, an image of the target domain."""
        ...


class Phase(NamedTuple):
    """One phase of a model that trains in phases (progressive growing): what its epoch's training data is."""

    resolution: int
    """Height and width of the training images: the data's crops, box-downscaled to this."""
    batch_size: int | None
    """Images per batch over all processes, split among them; None: the data module's own `batch_size` (per process)."""
    images: int | None
    """Training images of the phase (one epoch), drawn from repeated shuffles of the training set; None: one pass."""
    fade: bool
    """Whether this phase fades `resolution`'s new layers in (else it stabilises)."""


@runtime_checkable
class TrainsInPhases(Protocol):
    """A model whose training data changes from epoch to epoch (progressive growing: a phase per epoch, each at its
    resolution and batch size). The data module reloads the training loader every epoch for it, and the metrics
    compare its images with the held-out images box-downscaled to its current `resolution`."""

    resolution: int
    """The resolution it generates images at now."""

    def training_phase(self, epoch: int) -> Phase:
        """The phase trained in `epoch`."""
        ...


@runtime_checkable
class ReportsStepLosses(Protocol):
    """A model that keeps its last training step's loss terms, for callbacks (the divergence guard)."""

    step_losses: dict[str, Tensor]
    """{"train/<name>": detached scalar} of the last training step."""


@runtime_checkable
class SizedNetwork(Protocol):
    """A network whose input height and width must be multiples of `size_multiple`."""

    size_multiple: int


@runtime_checkable
class CheckpointsActivations(Protocol):
    """A network whose blocks' activations can be recomputed in backward instead of kept (activation checkpointing:
    `speed.checkpoint_activations`), e.g. the ResNet, U-Net and ProGAN generators."""

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Turn it on or off; the parameters, and so the checkpoints, stay the same."""
        ...


@runtime_checkable
class EncodesFeatures(Protocol):
    """A generator that gives its intermediate activations (CUT's PatchNCE compares them)."""

    def features(self, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
        """The activations after each of `layers` (ascending layer indices) for input `x`."""
        ...


@runtime_checkable
class FixedSizeNetwork(Protocol):
    """A network (or model) that makes or takes images of exactly `image_size` x `image_size` pixels."""

    image_size: int


@runtime_checkable
class StyleConditioned(Protocol):
    """A translator that applies a style code: `forward(images (B, C, H, W), codes (B, style_dim))` (StarGAN v2's
    generator). Exported with both inputs."""

    style_dim: int


@runtime_checkable
class LatentGenerator(Protocol):
    """A noise -> image network: latents of `nz` numbers to `image_size` x `image_size` images."""

    nz: int
    image_size: int


@runtime_checkable
class PredictsDomains(Protocol):
    """A model that translates images of given domains (predict's folder data checks it before loading images)."""

    def predict_directions(self, domains: Iterable[str]) -> dict[str, str]:
        """{direction: its source domain} for the directions translating images of `domains`; a ValueError naming
        data.predict.domain when there is none."""
        ...


@runtime_checkable
class CheckedData(Protocol):
    """A data module that checks its settings and files against the model before a run starts (the CLI calls it)."""

    def check(self, model: object | None = None, stage: str | None = None) -> object: ...


@runtime_checkable
class SampleData(Protocol):
    """A data module that gives the fixed images of the sample grids."""

    def sample_batch(self, num_images: int) -> dict[str, Tensor]:
        """`num_images` fixed held-out images per domain, {"A": (N, C, H, W), ...} in [-1, 1]."""
        ...


@runtime_checkable
class HeldOutData(Protocol):
    """A data module that gives the held-out images metrics are computed on."""

    variable_sizes: bool
    """True when held-out images keep their own sizes (no crop): they are then evaluated one by one."""

    def held_out_images(self, domain: str, max_images: int | None = None) -> tuple[Dataset, str]:
        """The held-out images of `domain`, each once (items {"A": (C, H, W), ...}), and a fingerprint of exactly
        these images and their preprocessing (it keys caches of their features)."""
        ...


@runtime_checkable
class PairedHeldOutData(HeldOutData, Protocol):
    """Held-out data that may pair the domains' images (pix2pix's aligned A|B files)."""

    held_out_pairs: bool
    """True when item i of held_out_images("A") and of held_out_images("B") are the two images of one pair."""
