"""The standard synthetic concept-drift streams, generated here (seeded):

- SEA concepts (Street & Kim, 2001): three attributes uniform on [0, 10];
  the label is x1 + x2 <= theta, theta switching between 8, 9, 7 and 9.5;
  a share of labels flipped as noise. Drift is sudden.
- Rotating hyperplane (Hulten et al., 2001): d attributes uniform on [0, 1];
  the label is sum(w_i x_i) >= sum(w_i) / 2; after the drift starts the
  weights move by `magnitude` per sample, each weight's direction reversing
  with probability 10% every 1000 samples. Drift is gradual.
"""

from __future__ import annotations

import numpy as np

SEA_THRESHOLDS = (8.0, 9.0, 7.0, 9.5)


def sea(n: int, theta: float, rng: np.random.Generator, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of the SEA concept with threshold `theta`."""
    x = rng.uniform(0.0, 10.0, (n, 3))
    y = (x[:, 0] + x[:, 1] <= theta).astype(int)
    flip = rng.random(n) < noise
    return x, np.where(flip, 1 - y, y)


def hyperplane(
    n: int,
    rng: np.random.Generator,
    dims: int = 10,
    drift_from: int | None = None,
    magnitude: float = 0.001,
    noise: float = 0.05,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` samples of a rotating hyperplane, still until `drift_from` (None: never)."""
    w = rng.random(dims) if weights is None else weights.copy()
    x = rng.random((n, dims))
    steps = np.zeros(n) if drift_from is None else np.maximum(np.arange(n) - drift_from, 0).astype(float)
    # Direction of each weight's movement, re-drawn every 1000 samples of drift.
    periods = int(steps.max() // 1000) + 1
    flips = np.where(rng.random((periods, dims)) < 0.1, -1.0, 1.0)
    directions = np.cumprod(flips, axis=0)
    period = (steps // 1000).astype(int)
    # Weight at each sample: start plus the movement accumulated period by period.
    moved_before = np.concatenate([np.zeros((1, dims)), np.cumsum(directions[:-1] * 1000 * magnitude, axis=0)])
    current = w + moved_before[period] + directions[period] * ((steps % 1000) * magnitude)[:, None]
    y = ((x * current).sum(axis=1) >= current.sum(axis=1) / 2).astype(int)
    flip = rng.random(n) < noise
    return x, np.where(flip, 1 - y, y)
