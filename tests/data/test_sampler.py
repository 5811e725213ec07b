from __future__ import annotations

import itertools

import numpy as np
import pytest

from posebh_cli.data.sampler import MixtureSampler, mix_seed, split_quotas
from posebh_cli.errors import PosebhError


def test_split_quotas_largest_remainder():
    assert split_quotas(10, np.array([1.0, 1.0, 1.0])).tolist() == [4, 3, 3]
    assert split_quotas(7, np.array([5.0, 2.0])).tolist() == [5, 2]


def test_proportional_epoch_is_the_concatenation_once():
    sampler = MixtureSampler([50, 30, 20], batch_size=10, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(100))
    assert order != list(range(100))  # shuffled
    assert list(MixtureSampler([50, 30, 20], batch_size=10, seed=3)) == order
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_ratios_are_respected():
    sizes = [1000, 100, 10]
    sampler = MixtureSampler(
        sizes, batch_size=16, ratios=[0.5, 0.3, 0.2], seed=0, epoch_length=10_000
    )
    order = np.array(list(sampler))[:10_000]
    dataset = np.searchsorted(np.cumsum(sizes), order, side="right")
    np.testing.assert_allclose(np.bincount(dataset) / len(order), [0.5, 0.3, 0.2], atol=0.01)
    # The over-sampled tiny dataset repeats its samples evenly (200 draws each of 10).
    counts = np.bincount(order[dataset == 2] - 1100, minlength=10)
    assert counts.min() >= 199 and counts.max() <= 201
    # Over several epochs, each sampled window of 512 is close to the ratios as well.
    window = dataset[:512]
    assert abs((window == 0).mean() - 0.5) < 0.08


def test_ranks_are_disjoint_and_cover_the_epoch():
    sizes, world = [37, 24], 4
    shares = [
        list(MixtureSampler(sizes, batch_size=5, seed=9, rank=r, world_size=world))
        for r in range(world)
    ]
    assert all(len(s) == 20 for s in shares)  # 61 padded to 80 = 4 ranks x 4 batches of 5
    union = set(itertools.chain.from_iterable(shares))
    assert union == set(range(61))
    exact = [list(MixtureSampler([30, 30], 5, seed=1, rank=r, world_size=4)) for r in range(4)]
    assert sum(len(s) for s in exact) == 60 == len(set(itertools.chain.from_iterable(exact)))


def test_resume_gives_identical_continuation():
    kwargs = dict(
        sizes=[13, 7], batch_size=4, ratios=[2, 1], seed=5, infinite=True, yield_seeds=True
    )
    reference = list(itertools.islice(iter(MixtureSampler(**kwargs)), 100))
    sampler = MixtureSampler(**kwargs)
    first = list(itertools.islice(iter(sampler), 37))
    state = sampler.state_dict()
    assert state["epoch"] == 1 and state["consumed"] == 37 - 20
    resumed = MixtureSampler(**kwargs)
    resumed.load_state_dict(state)
    rest = list(itertools.islice(iter(resumed), 63))
    assert first + rest == reference
    assert len({seed for _, seed in reference}) == 100  # per-position seeds differ


def test_state_with_explicit_consumed_and_mismatch():
    sampler = MixtureSampler([10], batch_size=2, seed=0)
    order = list(sampler)
    resumed = MixtureSampler([10], batch_size=2, seed=0)
    resumed.load_state_dict(sampler.state_dict(consumed=4))
    assert list(resumed) == order[4:]
    other = MixtureSampler([11], batch_size=2, seed=0)
    with pytest.raises(PosebhError, match="sizes"):
        other.load_state_dict(sampler.state_dict())


def test_mix_seed_is_deterministic_and_vectorised():
    many = mix_seed(1, 2, np.arange(5))
    assert [mix_seed(1, 2, i) for i in range(5)] == many.tolist()
    assert mix_seed(1, 2, 0) != mix_seed(2, 1, 0) and (many >= 0).all()


def test_invalid_arguments():
    with pytest.raises(ValueError):
        MixtureSampler([0, 3], 2)
    with pytest.raises(ValueError):
        MixtureSampler([3, 3], 2, ratios=[1.0])
    with pytest.raises(ValueError):
        MixtureSampler([3], 2, rank=2, world_size=2)
