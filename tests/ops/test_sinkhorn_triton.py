"""Triton kernels against the torch reference, run on CPU tensors in the Triton interpreter.

TRITON_INTERPRET=1 must be set before the kernels are decorated, i.e. before
posebh_cli.ops.sinkhorn_triton is imported (it is imported lazily by the dispatch), so it is set
here at module import, which pytest does at collection time, before any test runs.
Tolerances: assignment within 1e-5 of the torch path (both fp32, summation order differs), hard
argmax exact. The Gumbel noise comes from tl.rand (Philox) rather than torch's generator, so the
sampled indices are checked for validity, determinism per seed and frequencies that follow q.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton")

from posebh_cli.ops import momentum_update_prototypes, segmented_sinkhorn  # noqa: E402
from posebh_cli.ops.sinkhorn_triton import segment_tiles, segmented_sinkhorn_triton  # noqa: E402

ATOL = 1e-5


def random_case(seed: int, num_pixels: int, num_cols: int, num_segments: int):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_pixels, num_cols, generator=gen)
    segment_ids = torch.randint(2, num_segments, (num_pixels,), generator=gen)  # unsorted
    segment_ids[num_pixels // 3] = 1  # segment 0 empty, segment 1 a single pixel
    return scores, segment_ids


def assert_parity(scores, segment_ids, num_segments, block_rows=None, **kwargs):
    expected = segmented_sinkhorn(scores, segment_ids, num_segments, backend="torch", **kwargs)
    eps, iters = kwargs.get("eps", 0.05), kwargs.get("iters", 3)
    got = segmented_sinkhorn_triton(scores.float(), segment_ids, num_segments, eps, iters, 0.5,
                                    seed=0, block_rows=block_rows)
    torch.testing.assert_close(got.assignment, expected.assignment, atol=ATOL, rtol=0)
    assert torch.equal(got.hard, expected.hard)
    return got


def test_segment_tiles_cover_every_row_once_within_one_segment():
    segment_ids = torch.tensor([3, 1, 3, 3, 0, 3, 1, 3])  # segment 2 empty
    rows, tile_seg, tile_start, tile_end = segment_tiles(segment_ids, 4, block_rows=2)
    assert torch.equal(segment_ids[rows], torch.tensor([0, 1, 1, 3, 3, 3, 3, 3]))
    used = tile_seg < 4
    # Segment 3 has 5 rows -> 3 tiles of 2, 2, 1 rows; segments 0 and 1 one tile each.
    assert tile_seg[used].tolist() == [0, 1, 3, 3, 3]
    assert (tile_end - tile_start)[used].tolist() == [1, 2, 2, 2, 1]
    spans = zip(tile_start[used], tile_end[used], strict=True)
    covered = torch.cat([torch.arange(start, end) for start, end in spans])
    assert torch.equal(covered, torch.arange(8))
    assert tile_seg.shape[0] == 4 + 4  # static grid: cdiv(8, 2) + J programs


@pytest.mark.parametrize("iters", [0, 1, 3])
def test_matches_torch_on_many_unsorted_segments_with_many_tiles(iters):
    scores, segment_ids = random_case(iters, 300, 3, 12)
    assert_parity(scores, segment_ids, 12, block_rows=8, iters=iters)


def test_matches_torch_with_default_tiles_and_wide_one_segment_problem():
    scores, _ = random_case(1, 96, 170, 3)
    assert_parity(scores, torch.zeros(96, dtype=torch.long), 1)
    scores, segment_ids = random_case(2, 200, 5, 7)
    assert_parity(scores, segment_ids, 7)


def test_large_logits_stay_finite():
    scores, segment_ids = random_case(3, 150, 3, 5)
    got = assert_parity(scores * 2 - 1, segment_ids, 5, block_rows=16, eps=1e-3)
    assert torch.isfinite(got.assignment).all()
    torch.testing.assert_close(got.assignment.sum(dim=1), torch.ones(150), atol=1e-6, rtol=0)


def test_edge_shapes_empty_input_single_column_single_pixel():
    empty = segmented_sinkhorn(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 3,
                               backend="triton", seed=1)
    assert empty.assignment.shape == (0, 3) and empty.sampled.shape == (0,)
    one_col = segmented_sinkhorn(torch.rand(7, 1), torch.arange(7) % 3, 3, backend="triton",
                                 seed=1)
    assert torch.equal(one_col.assignment, torch.ones(7, 1))
    assert torch.equal(one_col.hard, torch.zeros(7, dtype=torch.long))
    assert torch.equal(one_col.sampled, torch.zeros(7, dtype=torch.long))
    single = segmented_sinkhorn(torch.tensor([[0.9, 0.1, 0.4]]), torch.tensor([2]), 3,
                                backend="triton", seed=1)
    torch.testing.assert_close(single.assignment, torch.full((1, 3), 1 / 3), atol=1e-7, rtol=0)


def test_env_var_routes_auto_to_triton(monkeypatch):
    scores, segment_ids = random_case(4, 60, 3, 4)
    monkeypatch.setenv("POSEBH_SINKHORN", "triton")
    via_env = segmented_sinkhorn(scores, segment_ids, 4, seed=9)
    direct = segmented_sinkhorn_triton(scores, segment_ids, 4, 0.05, 3, 0.5, seed=9)
    assert torch.equal(via_env.sampled, direct.sampled)
    assert torch.equal(via_env.assignment, direct.assignment)


def test_gumbel_samples_are_valid_seeded_and_follow_q():
    # iters = 0: every row has q = softmax([0, 0.6, 1.2]); 3000 draws, 5 sigma < 0.05.
    scores = torch.tensor([[0.0, 0.03, 0.06]]).repeat(3000, 1)
    segment_ids = torch.arange(3000) % 3

    def run(seed):
        return segmented_sinkhorn_triton(scores, segment_ids, 3, 0.05, 0, 0.5, seed=seed)

    first, again, other = run(7), run(7), run(8)
    assert torch.equal(first.sampled, again.sampled)
    assert not torch.equal(first.sampled, other.sampled)
    assert first.sampled.min() >= 0 and first.sampled.max() <= 2
    frequencies = torch.bincount(first.sampled, minlength=3).double() / 3000
    expected = torch.softmax(torch.tensor([0.0, 0.6, 1.2], dtype=torch.float64), dim=0)
    torch.testing.assert_close(frequencies, expected, atol=0.05, rtol=0)
    # Chi-square over the 3 outcomes (2 dof): 13.8 is the 0.1% quantile.
    counts = frequencies * 3000
    chi2 = ((counts - 3000 * expected) ** 2 / (3000 * expected)).sum()
    assert chi2 < 13.8


def test_momentum_update_matches_torch_and_leaves_untouched_slots():
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.nn.functional.normalize(torch.randn(6, 3, 20, generator=gen), dim=-1)
    embeddings = torch.randn(90, 20, generator=gen) * 2
    segment_ids = torch.randint(0, 5, (90,), generator=gen)  # type 5 untouched
    assignment = torch.randint(0, 3, (90,), generator=gen)
    weights = torch.rand(90, generator=gen)
    weights[segment_ids == 4] = 0.0  # zero mass: untouched too
    args = (prototypes, embeddings, segment_ids, assignment, weights)
    expected = momentum_update_prototypes(*args, momentum=0.9, backend="torch")
    got = momentum_update_prototypes(*args, momentum=0.9, backend="triton")
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert torch.equal(got[4:], prototypes[4:])
    assert not torch.equal(got[:4], prototypes[:4])
