"""Training order that a resumed run can continue exactly: which images come when, and their random augmentation,
depend only on the run's seed, the epoch and the position in it, never on workers, restarts or the global RNG."""

import hashlib
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


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
