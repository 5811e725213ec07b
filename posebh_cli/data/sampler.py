"""MixtureSampler: a seeded, resumable, DDP-aware stream of indices over several datasets.

Indices are global positions in the concatenation of the datasets (dataset d occupies
[offsets[d], offsets[d] + sizes[d])), i.e. the order of `torch.utils.data.ConcatDataset` or
`posebh_cli.data.topdown_dataset.MixedPoseDataset`.

One epoch is built as follows (everything seeded by (seed, epoch)):
1. Quotas: epoch_length samples split over datasets by `ratios` (largest-remainder rounding).
   ratios=None means proportional to size with epoch_length = sum(sizes), so each dataset's quota
   is its size: plain concatenation, every sample exactly once (the reference mixture, METHOD §4).
2. Dataset d contributes its quota from back-to-back random permutations of its samples, so an
   over-sampled small dataset repeats each sample as evenly as possible, and an under-sampled one
   draws without repeats.
3. The union is shuffled, padded (by wrapping) to a multiple of world_size * batch_size, and rank r
   takes positions r, r + world_size, ... (disjoint shares, as DistributedSampler does).
Each yielded sample also has a 63-bit seed derived from (seed, epoch, global position) for its
augmentation, so a resumed run replays identical crops (`yield_seeds=True` yields (index, seed)).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from posebh_cli.errors import PosebhError

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix_seed(*values: int | np.ndarray) -> np.ndarray | int:
    """SplitMix64-style hash of integers (vectorised over numpy arrays) -> non-negative int63.

    Used to derive independent per-sample seeds from (base seed, epoch, position).
    """
    state = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for value in values:
            v = np.asarray(value).astype(np.uint64)
            z = (state ^ v) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            state = z ^ (z >> np.uint64(31))
    out = (state & _MASK64) >> np.uint64(1)
    return out.astype(np.int64) if np.ndim(out) else int(out)


def split_quotas(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers summing to `total`, proportional to `weights` (largest remainder)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = total * weights / weights.sum()
    quotas = np.floor(exact).astype(np.int64)
    remainder = total - int(quotas.sum())
    if remainder > 0:
        # Ties broken by dataset order, so the quota is deterministic.
        order = np.argsort(-(exact - quotas), kind="stable")
        quotas[order[:remainder]] += 1
    return quotas


class MixtureSampler(Sampler):
    """Seeded stream of global indices over a mixture of datasets.

    Args:
        sizes: samples per dataset (all > 0).
        batch_size: per-rank batch size; each rank's epoch share is a whole number of batches.
        ratios: sampling weight per dataset (normalised); None = proportional to size.
        seed: base seed (same on all ranks).
        rank, world_size: this process's share.
        epoch_length: global samples per epoch; default sum(sizes).
        infinite: keep going into the next epochs instead of stopping after one.
        yield_seeds: yield (global_index, sample_seed) tuples instead of ints.
    """

    def __init__(
        self,
        sizes: list[int],
        batch_size: int,
        ratios: list[float] | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_length: int | None = None,
        infinite: bool = False,
        yield_seeds: bool = False,
    ) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if self.sizes.ndim != 1 or len(self.sizes) == 0 or (self.sizes <= 0).any():
            raise ValueError(f"sizes must be a non-empty list of positive ints, got {sizes}")
        if ratios is not None:
            if len(ratios) != len(sizes):
                raise ValueError(f"{len(ratios)} ratios for {len(sizes)} datasets")
            if min(ratios) < 0 or sum(ratios) <= 0:
                raise ValueError(f"ratios must be >= 0 with a positive sum, got {ratios}")
        if batch_size <= 0 or world_size <= 0 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size/rank/world_size: {batch_size}/{rank}/{world_size}")
        self.batch_size = int(batch_size)
        self.ratios = None if ratios is None else np.asarray(ratios, dtype=np.float64)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch_length = int(epoch_length or self.sizes.sum())
        self.infinite = infinite
        self.yield_seeds = yield_seeds
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.epoch = 0
        self.consumed = 0  # samples of this rank's current-epoch share already yielded/consumed
        chunk = self.world_size * self.batch_size
        self.padded_length = -(-self.epoch_length // chunk) * chunk
        self.samples_per_rank = self.padded_length // self.world_size

    def __len__(self) -> int:
        """Samples this rank sees per epoch (a multiple of batch_size)."""
        return self.samples_per_rank

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)
        self.consumed = 0

    def quotas(self) -> np.ndarray:
        """(D,) samples per dataset in one epoch (before padding)."""
        weights = self.sizes if self.ratios is None else self.ratios
        return split_quotas(self.epoch_length, weights)

    def epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The padded global order of `epoch`: (indices, seeds), both (padded_length,) int64."""
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for d, (size, quota) in enumerate(zip(self.sizes, self.quotas(), strict=True)):
            repeats = -(-int(quota) // int(size))
            perms = [rng.permutation(int(size)) for _ in range(repeats)]
            local = np.concatenate(perms)[:quota] if perms else np.empty(0, np.int64)
            parts.append(local + self.offsets[d])
        order = rng.permutation(np.concatenate(parts))
        pad = self.padded_length - len(order)
        if pad:
            order = np.concatenate([order, np.resize(order, pad)])
        positions = np.arange(self.padded_length, dtype=np.int64)
        seeds = np.asarray(mix_seed(self.seed, epoch, positions), dtype=np.int64)
        return order.astype(np.int64), seeds

    def rank_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's share of `epoch`: (indices, seeds), each (samples_per_rank,)."""
        order, seeds = self.epoch_order(epoch)
        return order[self.rank :: self.world_size], seeds[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[Any]:
        while True:
            indices, seeds = self.rank_order(self.epoch)
            start = self.consumed
            for i in range(start, len(indices)):
                self.consumed = i + 1
                if self.yield_seeds:
                    yield int(indices[i]), int(seeds[i])
                else:
                    yield int(indices[i])
            if not self.infinite:
                return
            self.set_epoch(self.epoch + 1)

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Resume point. With a prefetching DataLoader the sampler runs ahead of training: pass
        `consumed` = samples of this epoch the loop actually trained on (steps * batch_size)."""
        return {
            "epoch": self.epoch,
            "consumed": self.consumed if consumed is None else int(consumed),
            "seed": self.seed,
            "sizes": self.sizes.tolist(),
            "ratios": None if self.ratios is None else self.ratios.tolist(),
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "epoch_length": self.epoch_length,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state` left off; the mixture settings must match."""
        for key in ("seed", "sizes", "ratios", "world_size", "batch_size", "epoch_length"):
            mine = self.state_dict()[key]
            if state.get(key) != mine:
                raise PosebhError(
                    f"cannot resume the sampler: saved {key}={state.get(key)!r} but the current "
                    f"run has {key}={mine!r}; resume with the same data mixture and batch layout"
                )
        self.epoch = int(state["epoch"])
        self.consumed = int(state["consumed"])
