"""One-Euro filter on signals with known behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posebh_cli.engine.smoothing import OneEuroFilter, smoothing_factor


def run(filter_: OneEuroFilter, signal: np.ndarray, fps: float = 30.0) -> np.ndarray:
    return np.stack([filter_(x, i / fps) for i, x in enumerate(signal)])


def test_smoothing_factor_closed_form():
    # tau = 1 / (2 pi fc); alpha = 1 / (1 + tau / dt)
    fc, dt = 1.0, 1 / 30
    assert smoothing_factor(fc, dt) == pytest.approx(1 / (1 + 1 / (2 * math.pi * fc) / dt))
    assert smoothing_factor(1e9, dt) == pytest.approx(1.0)


def test_constant_signal_stays_constant():
    signal = np.full((50, 17, 2), 42.5)
    assert np.allclose(run(OneEuroFilter(), signal), 42.5)


def test_first_sample_passes_and_reset_forgets():
    f = OneEuroFilter()
    assert f(np.array([3.0]), 0.0)[0] == 3.0
    f(np.array([3.0]), 0.1)
    f.reset()
    assert f(np.array([10.0]), 0.2)[0] == 10.0


def test_step_response_is_monotone_and_converges():
    signal = np.concatenate([np.zeros(5), np.ones(120)])[:, None]
    out = run(OneEuroFilter(min_cutoff=1.0, beta=0.0), signal)[:, 0]
    assert np.all(np.diff(out) >= -1e-12)  # no overshoot, no ringing
    assert 0 < out[5] < 1  # lags behind the step...
    assert out[-1] == pytest.approx(1.0, abs=1e-3)  # ...and converges


def test_beta_reduces_lag_on_fast_motion():
    ramp = np.linspace(0, 300, 60)[:, None]  # 150 px/s
    slow = run(OneEuroFilter(min_cutoff=0.5, beta=0.0), ramp)
    fast = run(OneEuroFilter(min_cutoff=0.5, beta=0.5), ramp)
    assert abs(fast[-1, 0] - 300) < abs(slow[-1, 0] - 300)


def test_noise_variance_is_reduced():
    rng = np.random.default_rng(0)
    noisy = 100 + rng.normal(0, 2.0, size=(300, 4))
    smoothed = run(OneEuroFilter(min_cutoff=1.0, beta=0.01), noisy)
    assert smoothed[50:].var(axis=0).max() < 0.3 * noisy[50:].var(axis=0).min()


def test_bad_timestamps_and_parameters():
    f = OneEuroFilter()
    f(np.zeros(2), 1.0)
    with pytest.raises(ValueError):
        f(np.zeros(2), 1.0)
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)
