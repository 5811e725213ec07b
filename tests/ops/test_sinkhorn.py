from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from posebh_cli.errors import PosebhError
from posebh_cli.ops import SinkhornResult, segmented_sinkhorn
from posebh_cli.ops.backend import resolve_backend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sinkhorn_oracle import (
    log_domain_sinkhorn_one_type,
    per_type_loop,
    swav_sinkhorn_one_type,
)


def random_case(seed: int, num_pixels: int, num_cols: int, num_segments: int):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.rand(num_pixels, num_cols, generator=gen)  # |cos| in [0, 1]
    # Unsorted ids; segments 0 (empty) and 1 (one pixel) are forced edge cases.
    segment_ids = torch.randint(2, num_segments, (num_pixels,), generator=gen)
    segment_ids[num_pixels // 2] = 1
    return scores, segment_ids


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iters", [1, 3, 5])
def test_vectorised_matches_per_type_swav_loop(seed, iters):
    scores, segment_ids = random_case(seed, 3000, 3, 214)
    result = segmented_sinkhorn(scores, segment_ids, 214, iters=iters, backend="torch", seed=0)
    expected = per_type_loop(scores, segment_ids, 214, 0.05, iters)
    assert result.assignment.dtype == torch.float32
    torch.testing.assert_close(result.assignment.double(), expected, atol=1e-6, rtol=0)
    assert torch.equal(result.hard, expected.argmax(dim=1))


def test_one_big_segment_with_many_columns_matches_loop():
    scores, _ = random_case(3, 2000, 170, 3)
    segment_ids = torch.zeros(2000, dtype=torch.int64)
    result = segmented_sinkhorn(scores, segment_ids, 1, backend="torch", seed=0)
    expected = swav_sinkhorn_one_type(scores, 0.05, 3)
    torch.testing.assert_close(result.assignment.double(), expected, atol=1e-6, rtol=0)


def test_rows_sum_to_one_and_columns_balanced_at_convergence():
    scores, segment_ids = random_case(4, 600, 3, 5)
    q = segmented_sinkhorn(scores, segment_ids, 5, iters=200, backend="torch").assignment
    torch.testing.assert_close(q.sum(dim=1), torch.ones(600), atol=1e-6, rtol=0)
    # Converged Sinkhorn: every prototype of a type gets n_j / K pixels' worth of mass.
    for segment in range(2, 5):
        rows = q[segment_ids == segment]
        expected = torch.full((3,), rows.shape[0] / 3)
        torch.testing.assert_close(rows.sum(dim=0), expected, atol=1e-3, rtol=1e-4)


def test_equal_scores_give_uniform_assignment():
    scores = torch.full((50, 4), 0.7)
    segment_ids = torch.randint(0, 3, (50,), generator=torch.Generator().manual_seed(0))
    q = segmented_sinkhorn(scores, segment_ids, 3, backend="torch").assignment
    torch.testing.assert_close(q, torch.full((50, 4), 0.25), atol=1e-7, rtol=0)


def test_two_by_two_by_hand():
    # A = exp(s / eps) = [[e^2, 1], [1, e^2]] -> one iteration keeps the symmetric matrix, so the
    # column step divides both columns by (e^2 + 1) and rows end as [e^2, 1] / (e^2 + 1).
    scores = torch.tensor([[0.1, 0.0], [0.0, 0.1]])
    q = segmented_sinkhorn(scores, torch.zeros(2, dtype=torch.long), 1, iters=1, backend="torch")
    big = math.exp(2.0) / (math.exp(2.0) + 1.0)
    expected = torch.tensor([[big, 1 - big], [1 - big, big]])
    torch.testing.assert_close(q.assignment, expected, atol=1e-7, rtol=0)


def test_two_by_two_asymmetric_by_hand():
    # A = [[a, b], [c, d]] = exp(s / eps). Column step: c1 = 1/(a+c), c2 = 1/(b+d); after the
    # pixel step and the final row scaling q_00 = (a/(a+c)) / (a/(a+c) + b/(b+d)).
    scores = torch.tensor([[0.10, 0.02], [0.03, 0.05]])
    a, b, c, d = (math.exp(v / 0.05) for v in (0.10, 0.02, 0.03, 0.05))
    row0 = torch.tensor([a / (a + c), b / (b + d)])
    row1 = torch.tensor([c / (a + c), d / (b + d)])
    expected = torch.stack([row0 / row0.sum(), row1 / row1.sum()])
    q = segmented_sinkhorn(scores, torch.zeros(2, dtype=torch.long), 1, iters=1, backend="torch")
    torch.testing.assert_close(q.assignment, expected.float(), atol=1e-7, rtol=0)


def test_single_pixel_segment_is_uniform():
    # n_j = 1: the first prototype step gives every column the same mass 1/K, so q = 1/K.
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.4]])
    q = segmented_sinkhorn(scores, torch.tensor([3, 1]), 4, backend="torch").assignment
    torch.testing.assert_close(q, torch.full((2, 3), 1 / 3), atol=1e-7, rtol=0)


def test_zero_iterations_is_row_softmax():
    scores = torch.rand(20, 3, generator=torch.Generator().manual_seed(5))
    q = segmented_sinkhorn(scores, torch.zeros(20, dtype=torch.long), 1, iters=0, backend="torch")
    torch.testing.assert_close(q.assignment, torch.softmax(scores / 0.05, dim=1))


def test_invariant_to_a_per_segment_constant():
    scores, segment_ids = random_case(6, 500, 3, 8)
    # Scores on a 2^-10 grid and shifts in halves: the shifted inputs are exact in fp32, so any
    # difference would come from the method, not from rounding the inputs.
    scores = torch.round(scores * 1024) / 1024
    shift = torch.randint(-8, 9, (8,), generator=torch.Generator().manual_seed(1)) * 0.5
    base = segmented_sinkhorn(scores, segment_ids, 8, backend="torch").assignment
    shifted = segmented_sinkhorn(scores + shift[segment_ids, None], segment_ids, 8, backend="torch")
    torch.testing.assert_close(shifted.assignment, base, atol=1e-6, rtol=0)
    expected = per_type_loop(scores + shift[segment_ids, None], segment_ids, 8, 0.05, 3)
    torch.testing.assert_close(shifted.assignment.double(), expected, atol=1e-6, rtol=0)


def test_large_logits_stay_finite_and_match_log_domain_oracle():
    scores, segment_ids = random_case(7, 400, 3, 6)
    eps = 1e-3  # logits up to 1000: plain exp overflows fp32 (and fp64 underflows)
    result = segmented_sinkhorn(scores * 2 - 1, segment_ids, 6, eps=eps, backend="torch", seed=0)
    expected = per_type_loop(
        scores * 2 - 1, segment_ids, 6, eps, 3, oracle=log_domain_sinkhorn_one_type
    )
    assert torch.isfinite(result.assignment).all()
    torch.testing.assert_close(result.assignment.double(), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(result.assignment.sum(dim=1), torch.ones(400), atol=1e-6, rtol=0)


def test_bf16_and_fp64_inputs_are_computed_in_fp32():
    scores, segment_ids = random_case(8, 200, 3, 4)
    result = segmented_sinkhorn(scores.double(), segment_ids, 4, backend="torch")
    assert result.assignment.dtype == torch.float32
    reference = segmented_sinkhorn(scores.bfloat16().float(), segment_ids, 4, backend="torch")
    bf16 = segmented_sinkhorn(scores.bfloat16(), segment_ids, 4, backend="torch")
    torch.testing.assert_close(bf16.assignment, reference.assignment, atol=0, rtol=0)


def test_empty_input_and_single_column():
    empty = segmented_sinkhorn(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 4, seed=0)
    assert empty.assignment.shape == (0, 3) and empty.hard.shape == (0,)
    assert empty.sampled.shape == (0,)
    one_col = segmented_sinkhorn(torch.rand(9, 1), torch.arange(9) % 2, 2, backend="torch", seed=0)
    assert torch.equal(one_col.assignment, torch.ones(9, 1))
    assert torch.equal(one_col.hard, torch.zeros(9, dtype=torch.long))
    assert torch.equal(one_col.sampled, torch.zeros(9, dtype=torch.long))


def test_gumbel_sample_is_seeded_and_follows_q():
    # iters = 0 keeps q = softmax(s / eps) = [e^0, e^0.6, e^1.2] / sum for every identical row
    # (with Sinkhorn steps identical rows would be balanced to uniform).
    scores = torch.tensor([[0.0, 0.03, 0.06]]).repeat(4000, 1)
    segment_ids = torch.arange(4000) % 2
    kwargs = {"iters": 0, "backend": "torch"}
    first = segmented_sinkhorn(scores, segment_ids, 2, seed=123, **kwargs)
    again = segmented_sinkhorn(scores, segment_ids, 2, seed=123, **kwargs)
    other = segmented_sinkhorn(scores, segment_ids, 2, seed=124, **kwargs)
    assert isinstance(first, SinkhornResult)
    assert torch.equal(first.sampled, again.sampled)
    assert not torch.equal(first.sampled, other.sampled)
    # Identical rows: the sample frequencies estimate q (4000 draws; 5 sigma is < 0.04).
    frequencies = torch.bincount(first.sampled, minlength=3).double() / 4000
    torch.testing.assert_close(frequencies, first.assignment[0].double(), atol=0.04, rtol=0)
    assert torch.equal(first.hard, torch.full((4000,), 2))


def test_tau_does_not_move_the_hard_sample():
    scores, segment_ids = random_case(9, 300, 3, 4)
    low = segmented_sinkhorn(scores, segment_ids, 4, tau=0.1, seed=5, backend="torch")
    high = segmented_sinkhorn(scores, segment_ids, 4, tau=2.0, seed=5, backend="torch")
    assert torch.equal(low.sampled, high.sampled)


def test_bad_hyper_parameters_are_user_errors():
    scores, segment_ids = torch.rand(4, 3), torch.zeros(4, dtype=torch.long)
    for kwargs in ({"eps": 0.0}, {"iters": -1}, {"tau": 0.0}, {"backend": "loop"}):
        with pytest.raises(PosebhError):
            segmented_sinkhorn(scores, segment_ids, 1, **kwargs)


def test_env_var_forces_backend(monkeypatch):
    monkeypatch.setenv("POSEBH_SINKHORN", "torch")
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    monkeypatch.setenv("POSEBH_SINKHORN", "cuda")
    with pytest.raises(PosebhError, match="POSEBH_SINKHORN"):
        resolve_backend("auto", torch.device("cpu"))
    monkeypatch.delenv("POSEBH_SINKHORN")
    assert resolve_backend("auto", torch.device("cpu")) == "torch"


def test_forced_triton_without_triton_names_the_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # None in sys.modules: `import` fails
    monkeypatch.setenv("POSEBH_SINKHORN", "triton")
    with pytest.raises(PosebhError, match="triton"):
        segmented_sinkhorn(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), 1)
    monkeypatch.delenv("POSEBH_SINKHORN")
    with pytest.raises(PosebhError, match="'triton' package"):
        resolve_backend("triton", torch.device("cuda"))
    # "auto" silently falls back to torch when triton is missing.
    assert resolve_backend("auto", torch.device("cuda")) == "torch"


def test_triton_on_cpu_without_interpreter_is_a_user_error(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(PosebhError, match="TRITON_INTERPRET"):
        resolve_backend("triton", torch.device("cpu"))
