from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from posebh_cli.ops import momentum_update_prototypes


def unit_table(num_types: int, num_protos: int, num_features: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_types, num_protos, num_features, generator=gen), dim=-1)


def random_pixels(num_pixels: int, num_types: int, num_protos: int, num_features: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num_pixels, num_features, generator=gen) * 3.0
    segment_ids = torch.randint(0, num_types, (num_pixels,), generator=gen)
    assignment = torch.randint(0, num_protos, (num_pixels,), generator=gen)
    weights = torch.rand(num_pixels, generator=gen)
    return embeddings, segment_ids, assignment, weights


def test_hand_made_update_and_untouched_prototypes():
    # 2 types x 2 prototypes in 2-D; only (type 1, prototype 0) receives pixels.
    prototypes = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.6, 0.8]]]
    )
    # Unnormalised embeddings along +y with weights 1 and 4: f = normalize((0, 1) + 4 (0, 1)) = y.
    embeddings = torch.tensor([[0.0, 2.0], [0.0, 0.5]])
    segment_ids = torch.tensor([1, 1])
    assignment = torch.tensor([0, 0])
    weights = torch.tensor([1.0, 4.0])
    new = momentum_update_prototypes(
        prototypes, embeddings, segment_ids, assignment, weights, momentum=0.9, backend="torch"
    )
    mixed = torch.tensor([0.9, 0.1])  # 0.9 * (1, 0) + 0.1 * (0, 1), then unit length
    torch.testing.assert_close(new[1, 0], mixed / mixed.norm())
    assert torch.equal(new[0], prototypes[0])  # untouched: bit-identical
    assert torch.equal(new[1, 1], prototypes[1, 1])
    assert new.dtype == torch.float32


def test_weights_pick_the_direction():
    prototypes = torch.tensor([[[0.0, 1.0]]])  # J = 1, M = 1
    embeddings = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    weights = torch.tensor([3.0, 1.0, 0.0])  # (3 - 1) * x + 0 * y -> f = +x
    new = momentum_update_prototypes(
        prototypes, embeddings, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
        weights, momentum=0.5, backend="torch",
    )
    torch.testing.assert_close(new[0, 0], torch.tensor([1.0, 1.0]) / math.sqrt(2.0))


def test_zero_weight_pixels_do_not_count_as_mass():
    prototypes = unit_table(2, 3, 8, 0)
    embeddings, segment_ids, assignment, _ = random_pixels(10, 2, 3, 8, 1)
    new = momentum_update_prototypes(
        prototypes, embeddings, segment_ids, assignment, torch.zeros(10), backend="torch"
    )
    assert torch.equal(new, prototypes)


def test_matches_explicit_loop_on_random_data():
    prototypes = unit_table(5, 3, 16, 2)
    embeddings, segment_ids, assignment, weights = random_pixels(200, 4, 3, 16, 3)  # type 4 empty
    new = momentum_update_prototypes(
        prototypes, embeddings, segment_ids, assignment, weights, backend="torch"
    )
    for j in range(5):
        for m in range(3):
            chosen = (segment_ids == j) & (assignment == m)
            if not chosen.any():
                assert torch.equal(new[j, m], prototypes[j, m])
                continue
            f = (F.normalize(embeddings[chosen], dim=1) * weights[chosen, None]).sum(0)
            expected = F.normalize(0.999 * prototypes[j, m] + 0.001 * F.normalize(f, dim=0), dim=0)
            torch.testing.assert_close(new[j, m], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(new.norm(dim=-1), torch.ones(5, 3))


def _distributed_worker(rank: int, world_size: int, init_file: str, result_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    try:
        prototypes = unit_table(4, 3, 8, 0)
        embeddings, segment_ids, assignment, weights = random_pixels(60, 4, 3, 8, 10 + rank)
        new = momentum_update_prototypes(
            prototypes, embeddings, segment_ids, assignment, weights, momentum=0.9,
            backend="torch",
        )
        torch.save(new, f"{result_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_agree_and_equal_the_union_update(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    init_file, result_file = str(tmp_path / "init"), str(tmp_path / "table")
    mp.spawn(_distributed_worker, args=(2, init_file, result_file), nprocs=2, join=True)
    rank0, rank1 = torch.load(f"{result_file}.0"), torch.load(f"{result_file}.1")
    assert torch.equal(rank0, rank1)
    parts = [random_pixels(60, 4, 3, 8, 10 + rank) for rank in range(2)]
    union = [torch.cat([part[i] for part in parts]) for i in range(4)]
    single = momentum_update_prototypes(unit_table(4, 3, 8, 0), *union, momentum=0.9,
                                        backend="torch")
    torch.testing.assert_close(rank0, single, atol=1e-6, rtol=0)
