"""Training order that a resumed run can continue exactly: which images come when, and their random augmentation,
depend only on the run's seed, the epoch and the position in it, never on workers, restarts or the global RNG."""

import hashlib
import os
from collections.abc import Iterator

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lit_gan.compat import resume_position, sampler_epoch
from lit_gan.contracts import Phase, TrainsInPhases
from lit_gan.data.datasets import Downscaled


def item_seed(seed: int, epoch: int, position: int) -> int:
    """A seed for the item at `position` of `epoch`'s order (a 63-bit hash: nearby positions get unrelated seeds)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class ResumableSampler(DistributedSampler):
    """Each epoch a seeded shuffle of the dataset (DistributedSampler's: seed + epoch), sharded over the processes of
    a distributed run, yielding `(index, seed)` pairs for `SeededItems`: every item's augmentation is drawn from its
    own seed, a function of (seed, epoch, position in the epoch's order), so it is the same with any number of
    workers and after a restart. `skip(n)` starts the next pass at the n-th item of this process's share (resuming
    mid-epoch). Lightning calls `set_epoch` and, being a DistributedSampler already, leaves it in place under DDP;
    `resume_at` sets both before the first pass, since loader workers draw their first indices as soon as the
    loader's iterator is created, which is before Lightning's `set_epoch`.

    Args:
        dataset: the training dataset.
        seed: the run's seed (the same on every process).
        shuffle: shuffle each epoch.
        length: items per epoch over all processes, drawn from successive seeded shuffles of the dataset (a phase of
            a progressive GAN); None: one pass over the dataset.
    """

    def __init__(self, dataset: Dataset, seed: int, shuffle: bool = True, length: int | None = None) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        super().__init__(
            dataset,
            num_replicas=dist.get_world_size() if distributed else 1,
            rank=dist.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=seed,
        )
        self._skip = 0
        self.length = length
        if length is not None:
            self.num_samples = -(-length // self.num_replicas)  # each process's share
            self.total_size = self.num_samples * self.num_replicas

    def _order(self) -> list[int]:
        """This process's share of the epoch's order."""
        if self.length is None:
            return list(super().__iter__())
        n, order, rounds = len(self.dataset), [], 0  # type: ignore[arg-type]
        while len(order) < self.total_size:  # successive shuffles, each seeded by (seed, epoch, round)
            rng = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, -1 - rounds))
            order += torch.randperm(n, generator=rng).tolist() if self.shuffle else list(range(n))
            rounds += 1
        return order[self.rank : self.total_size : self.num_replicas]

    def skip(self, n: int) -> None:
        """Leave out the first `n` items of the next pass (only that one)."""
        self._skip = n

    def resume_at(self, epoch: int, items_done: int) -> None:
        """Make the next pass the rest of `epoch`'s order after its first `items_done` items (of this process)."""
        self.set_epoch(epoch)
        self.skip(items_done)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = self._order()  # this process's share, in order
        skip, self._skip = self._skip, 0
        for position in range(skip, len(indices)):
            overall = position * self.num_replicas + self.rank  # the position in the whole epoch's order
            yield indices[position], item_seed(self.seed, self.epoch, overall)


class SeededItems(Dataset):
    """`dataset[index]` computed with torch's generator seeded by the item's own seed (from `ResumableSampler`), under
    `fork_rng` so that the caller's random state is untouched."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class ResumableDataLoader(DataLoader):
    """The training DataLoader, declared resumable to Lightning (it has `state_dict` and `load_state_dict`) because
    it is: its `ResumableSampler` starts at the batch after the last one trained, set from the restored loop progress
    when the loader is built (`StyleDataModule.train_dataloader`), so it has no state of its own to save or load.
    Without this, Lightning warns on every mid-epoch resume that the loader is not resumable and results may be
    unreliable, which is not so here.
    """

    def state_dict(self) -> dict:
        """Empty: where the loader resumes comes from the loop progress in the checkpoint (`resume_position`)."""
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Nothing to load (see `state_dict`); the sampler was placed when the loader was built."""


def phase_batch_share(batch_size: int, world: int, resolution: int) -> int:
    """Each of `world` processes' batch of a phase's global minibatch `batch_size`: rounded down to a multiple of the
    processes, as the official Progressive GAN splits its minibatch over GPUs.

    Raises:
        ValueError: naming model.batch_sizes, if the minibatch is smaller than the number of processes.
    """
    if batch_size < world:
        raise ValueError(
            f"model.batch_sizes gives {batch_size} images per batch at {resolution}x{resolution}, fewer than the "
            f"{world} processes it is split over: give at least {world}"
        )
    return batch_size // world


class TrainingSchedule:
    """What each training epoch serves and where a (re)built training loader starts: the run's shuffle seed (kept in
    checkpoints, so that a resumed run keeps its order), the position a restored run resumes at, and for a model that
    trains in phases (`lit_gan.contracts.TrainsInPhases`, the progressive GAN) the epoch's phase: its resolution (the
    crops box-downscaled to it), batch size (global, split over the processes: `phase_batch_share`) and number of
    images (drawn from successive shuffles of the training set). `StyleDataModule.train_dataloader` builds its
    sampler here.

    Args:
        crop_size: the data's crop size (`data.crop_size`), which each phase's resolution must divide by a power of 2.
        batch_size: the data's batch size, used where a phase gives none.
    """

    def __init__(self, crop_size: int, batch_size: int) -> None:
        self.crop_size, self.batch_size = crop_size, batch_size
        self.seed: int | None = None  # of the training order; set by the first loader of a run, or restored
        self._first_loader = True  # the next loader is the first of a fit

    def start_fit(self) -> None:
        """A fit begins: its first loader starts where a restored run resumes (`position`)."""
        self._first_loader = True

    def position(self, trainer: pl.Trainer | None) -> tuple[int, int]:
        """(epoch, batches of it already trained) where the loader being built starts.

        The first loader of a fit starts where a restored run resumes (`resume_position`). A loader rebuilt later
        (every epoch, for a model that trains in phases) starts the epoch Lightning is about to train, at its first
        batch: `sampler_epoch`, the epoch Lightning also passes to the sampler's `set_epoch`. `resume_position`
        cannot tell that moment from a resume, since Lightning's restored counters have moved on.
        """
        if trainer is None:
            return 0, 0
        first, self._first_loader = self._first_loader, False
        return resume_position(trainer.fit_loop) if first else (sampler_epoch(trainer), 0)

    def phase(self, model: object, epoch: int) -> Phase | None:
        """The training phase of `epoch` when `model` trains in phases, else None.

        Raises:
            ValueError: naming data.crop_size, if the phase's resolution does not divide it by a power of two.
        """
        if not isinstance(model, TrainsInPhases):
            return None
        phase = model.training_phase(epoch)
        factor, crop = self.crop_size // phase.resolution, self.crop_size
        if factor < 1 or factor * phase.resolution != crop or factor & (factor - 1):
            raise ValueError(
                f"data.crop_size {crop}: the model trains at {phase.resolution}x{phase.resolution} in epoch {epoch}, "
                "which must be the crop size divided by a power of two; set data.crop_size to the generator's "
                "image_size"
            )
        return phase

    def sampler(self, dataset: Dataset, trainer: pl.Trainer | None) -> tuple[Dataset, ResumableSampler, int]:
        """The epoch's training data from the full-size `dataset`: (the dataset, its sampler placed where training
        continues, the batch size)."""
        if self.seed is None:
            self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything, on every process
        epoch, batches_done = self.position(trainer)
        phase = self.phase(trainer.lightning_module if trainer is not None else None, epoch)
        batch_size, length = self.batch_size, None
        if phase is not None:
            world = trainer.world_size if trainer is not None else 1
            if phase.batch_size is not None:  # the phase's minibatch is global: each process trains on its share
                batch_size = phase_batch_share(phase.batch_size, world, phase.resolution)
            if phase.images is not None:
                length = -(-phase.images // (batch_size * world)) * batch_size * world  # whole batches
            factor = self.crop_size // phase.resolution
            dataset = Downscaled(dataset, factor) if factor > 1 else dataset
        sampler = ResumableSampler(dataset, self.seed, length=length)
        sampler.resume_at(epoch, batches_done * batch_size)
        return dataset, sampler, batch_size

    def state_dict(self) -> dict:
        return {"shuffle_seed": self.seed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.seed = state_dict.get("shuffle_seed", self.seed)  # the order of the resumed run
