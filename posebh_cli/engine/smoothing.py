"""One-Euro filter: temporal smoothing of keypoints in video (Casiez et al., CHI 2012).

An exponential low-pass filter whose cutoff rises with the signal's speed: slow motion is
smoothed hard (jitter removed), fast motion passes with little lag.

    alpha(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_hat  = lowpass(dx/dt, alpha(d_cutoff))          (smoothed speed)
    fc      = min_cutoff + beta * |dx_hat|
    x_hat   = lowpass(x, alpha(fc))
Every element of the array (e.g. each keypoint coordinate) is filtered independently.
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """alpha in (0, 1]: the weight of the new sample for a first-order low-pass at `cutoff` Hz."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filter a stream of same-shaped arrays sampled at times t (seconds, increasing).

    min_cutoff: Hz, the cutoff at rest (lower = smoother); beta: speed coefficient (higher =
    less lag on fast motion); d_cutoff: Hz, cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05,
                 d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the history (e.g. when a track is lost): the next sample passes unchanged."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:
            raise ValueError(f"timestamps must increase (got {t} after {self._t})")
        a_d = smoothing_factor(self.d_cutoff, dt)
        dx = a_d * ((x - self._x) / dt) + (1.0 - a_d) * self._dx
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(dx), dt)
        x_hat = a * x + (1.0 - a) * self._x
        self._x, self._dx, self._t = x_hat, dx, float(t)
        return x_hat.copy()
