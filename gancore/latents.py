"""Framework-neutral random numbers every model draws the same way.

Counter-based numpy generators (``default_rng([seed, ...])``) make each number a pure
function of its coordinates, so a resumed run, a multi-process run and the other
framework draw exactly the same latents, with no generator state to checkpoint:

- export / grid latent of image ``i`` for ``--seed S``: ``default_rng([S, i])``
  (float64 draw cast to float32); ``samples.npz`` stores its id as ``S * SEED_STRIDE + i``;
- training randoms of the step that starts at stream position ``nimg``:
  ``default_rng([seed, 1, nimg])`` draws, for ProGAN, the D-step latents, the G-step latents,
  then the gradient-penalty mixing factors; for DCGAN, the (n_dis, batch, z_dim) latents.

Latents are N(0, I) by default; DCGAN may ask for U(-1, 1) (``dist="uniform"``, Radford et al.
2016 Figure 1), drawn from the same generators: ``uniform(-1, 1)`` in float64 for grids and
exports, ``2 * random(float32) - 1`` (exact in float32) for training.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SEED_STRIDE = 10**6
LATENT_DISTS = ("normal", "uniform")


def _check_dist(dist: str) -> None:
    if dist not in LATENT_DISTS:
        raise ValueError(f"latent distribution must be one of {LATENT_DISTS}, got {dist!r}")


def latents_for(seed: int, indices: Iterable[int], dim: int, dist: str = "normal") -> np.ndarray:
    """Per-image latents: row j is ``default_rng([seed, indices[j]]).standard_normal(dim)``
    (``dist="uniform"``: ``.uniform(-1, 1, dim)``), cast to float32."""
    _check_dist(dist)

    def one(i: int) -> np.ndarray:
        rng = np.random.default_rng([int(seed), int(i)])
        return rng.standard_normal(dim) if dist == "normal" else rng.uniform(-1.0, 1.0, dim)

    return np.stack([one(i) for i in indices]).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit vectors ``a`` and ``b`` at fractions ``t`` -> (T, dim)."""
    omega = np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))
    t = np.asarray(t, dtype=np.float64)[:, None]
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolation_latents(seed: int, rows: int, steps: int, dim: int) -> np.ndarray:
    """``rows`` x ``steps`` latents: row r slerps from latent 2r to latent 2r+1 of ``seed``.

    Endpoints are normalised to the unit sphere (ProGAN's G pixel-normalises its input, so
    only the direction matters) and scaled back by sqrt(dim), the typical norm of N(0, I).
    """
    ends = latents_for(seed, range(2 * rows), dim).astype(np.float64)
    ends /= np.linalg.norm(ends, axis=1, keepdims=True)
    t = np.linspace(0.0, 1.0, steps)
    rows_ = [slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)]
    return (np.concatenate(rows_) * np.sqrt(dim)).astype(np.float32)


def step_latents(seed: int, nimg: int, shape: tuple[int, ...], dist: str = "normal") -> np.ndarray:
    """DCGAN's training latents for the step at image position ``nimg``: one float32 array of
    ``shape`` (n_dis, batch, z_dim) from ``default_rng([seed, 1, nimg])``, N(0, 1) or, with
    ``dist="uniform"``, U(-1, 1) as ``2 * random(float32) - 1`` (values in [-1, 1))."""
    _check_dist(dist)
    rng = np.random.default_rng([int(seed), 1, int(nimg)])
    if dist == "normal":
        return rng.standard_normal(shape, dtype=np.float32)
    return np.float32(2.0) * rng.random(shape, dtype=np.float32) - np.float32(1.0)


def step_randoms(seed: int, nimg: int, batch: int, latent_dim: int) -> tuple[np.ndarray, ...]:
    """ProGAN's D-step latents, G-step latents and penalty mixing factors at position ``nimg``.

    Drawn over the GLOBAL batch, so W processes each take their rows of the same numbers.
    """
    rng = np.random.default_rng([int(seed), 1, int(nimg)])
    z_d = rng.standard_normal((batch, latent_dim)).astype(np.float32)
    z_g = rng.standard_normal((batch, latent_dim)).astype(np.float32)
    u = rng.random(batch).astype(np.float32)
    return z_d, z_g, u


class RandomSource:
    """Deterministic random reals (benchmarks, tests): image ``p`` is ``pool[p % pool]``.

    Has the ``batch(res, start, count)`` interface of ``datasets.stream.ImageStream``.
    """

    def __init__(
        self, channels: int = 3, num_classes: int = 0, seed: int = 0, pool: int = 64
    ) -> None:
        self.channels, self.num_classes, self.seed, self.pool = channels, num_classes, seed, pool
        self._cache: dict[int, np.ndarray] = {}

    def batch(self, res: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray | None]:
        if res not in self._cache:
            rng = np.random.default_rng([self.seed, res])
            self._cache[res] = rng.integers(
                0, 256, (self.pool, res, res, self.channels), dtype=np.uint8
            )
        idx = np.arange(start, start + count) % self.pool
        labels = (idx % self.num_classes).astype(np.int64) if self.num_classes else None
        return self._cache[res][idx], labels


def export_latents(
    seed: int, n: int, interpolate: int, dim: int
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Latents, per-image ids and metadata for a ``sample`` CLI export (both frameworks).

    ``interpolate`` 0: image i uses latent i of ``seed``; else ``n`` slerp rows of
    ``interpolate`` steps each (ids = row index).
    """
    if interpolate:
        if interpolate < 2:
            from gancore.errors import UserError

            raise UserError("--interpolate needs at least 2 steps")
        z = interpolation_latents(seed, n, interpolate, dim)
        ids = np.repeat(np.arange(n), interpolate)
        meta = {
            "interpolate_steps": interpolate,
            "seeds": "row index r: slerp(rng([S,2r]), rng([S,2r+1]))",
        }
        return z, ids, meta
    ids = np.arange(n)
    return latents_for(seed, ids, dim), ids, {}
