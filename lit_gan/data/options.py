"""The grouped options of `StyleDataModule`: the built-in dataset's sizes (`data.synthetic.*`), mode single_image's
crops (`data.single_image.*`) and the images `predict` stylizes (`data.predict.*`).

Each group is a frozen dataclass, which LightningCLI (jsonargparse) turns into nested keys: in a config
`data: {synthetic: {train_size: 150}}`, on the command line `--data.synthetic.train_size 150`, from Python
`StyleDataModule(synthetic=SyntheticOptions(train_size=150))` (a plain dict works too). The keys these replace
(`data.synthetic_train_size`, ...; lit_gan before 2026-12) are listed in `RENAMED_KEYS`: a config or command line that
still uses one is stopped with the new spelling (`renamed_data_keys`), and checkpoints that recorded them are read
with the new ones (`upgrade_data_hparams`).
"""

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar, get_args

from lit_gan.data.layouts import Domain


@dataclass(frozen=True)
class SyntheticOptions:
    """Sizes of the built-in `synthetic` dataset (`data.name: synthetic`).

    Args:
        train_size: images per domain in the training split.
        test_size: images per domain in the held-out split (validation, sample grids, FID/KID).
    """

    train_size: int = 400
    test_size: int = 32

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 1:
                raise ValueError(f"data.synthetic.{field.name} must be >= 1, got {getattr(self, field.name)}")


@dataclass(frozen=True)
class SingleImageOptions:
    """The crops of mode single_image (CUT's single-image translation).

    Args:
        scale: (low, high) range of the factors each domain's image is rescaled by before a crop, drawn uniformly per
            axis (the reference's 1 / random_scale_max to 1); the image is never made smaller than crop_size.
        epoch_size: crops of each domain's image per training epoch.
        held_out: fixed crops of each image in the held-out split (validation, sample grids, FID/KID).
    """

    scale: tuple[float, float] = (1 / 3, 1.0)
    epoch_size: int = 1000
    held_out: int = 16

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(
                f"data.single_image.scale must be (low, high) with 0 < low <= high, got {tuple(self.scale)}; "
                "the reference uses [0.333, 1.0]"
            )
        for key in ("epoch_size", "held_out"):
            if getattr(self, key) < 1:
                raise ValueError(f"data.single_image.{key} must be >= 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class PredictOptions:
    """The images `predict` stylizes instead of the held-out ones.

    Args:
        path: a folder (searched recursively) or one image file. Each image keeps its size (padded to what the
            network accepts; outputs are cropped back) and shares batches only with images of the same size;
            unreadable files are skipped and reported. `predict` then needs no training data: data.root, data.name
            and data.folder_A/B may be unset or point at a missing folder. In mode single_image, give the domain's
            image itself to translate it whole.
        domain: the domain the images come from, "A" or "B": CycleGAN translates A images to B and B images to A;
            pix2pix translates its source domain only (model.direction).
    """

    path: str | None = None
    domain: Domain = "A"

    def __post_init__(self) -> None:
        if self.domain not in get_args(Domain):
            raise ValueError(
                f"data.predict.domain: {self.domain!r} is not one of {', '.join(map(repr, get_args(Domain)))}"
            )


RENAMED_KEYS = {
    "synthetic_train_size": "synthetic.train_size",
    "synthetic_test_size": "synthetic.test_size",
    "single_image_scale": "single_image.scale",
    "single_image_epoch_size": "single_image.epoch_size",
    "single_image_held_out": "single_image.held_out",
    "predict_path": "predict.path",
    "predict_domain": "predict.domain",
}
"""Flat `data.*` keys of lit_gan before the grouped options, and their new names."""

Options = TypeVar("Options", SyntheticOptions, SingleImageOptions, PredictOptions)


def as_options(cls: type[Options], value: Options | dict | None, key: str) -> Options:
    """`value` as a `cls`: itself, the defaults for None, or built from a dict of its fields.

    Raises:
        ValueError: naming `data.<key>`, if the dict has a key that is not a field of `cls`.
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {field.name for field in fields(cls)})
        if unknown:
            keys = ", ".join(field.name for field in fields(cls))
            raise ValueError(f"data.{key}: unknown key(s) {', '.join(unknown)}; its keys are {keys}")
        return cls(**value)
    raise TypeError(f"data.{key} must be a {cls.__name__} or a dict of its fields, got {type(value).__name__}")


def plain(options: SyntheticOptions | SingleImageOptions | PredictOptions) -> dict[str, Any]:
    """The options as a dict of plain values (what checkpoints record: they are read weights-only)."""
    return asdict(options)


def upgrade_data_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The data module's hyperparameters of a checkpoint with the flat keys of `RENAMED_KEYS` grouped under their new
    names (a checkpoint of the grouped options is returned as it is)."""
    upgraded = {key: value for key, value in hparams.items() if key not in RENAMED_KEYS}
    for old, new in RENAMED_KEYS.items():
        if old in hparams:
            group, key = new.split(".")
            upgraded[group] = {**(upgraded.get(group) or {}), key: hparams[old]}
    return upgraded


def renamed_data_keys(data: object) -> list[str]:
    """The flat keys of `RENAMED_KEYS` in a config's `data` section (or in a dict of `--data.*` options), each as
    "data.old is now data.new" (empty when there are none)."""
    if not isinstance(data, dict):
        return []
    return [f"data.{old} is now data.{new}" for old, new in RENAMED_KEYS.items() if old in data]
