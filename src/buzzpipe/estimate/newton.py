"""Maximum likelihood by Newton steps over chunks of rows: one loop for arrays, Parquet and Dask.

A *chunk* is ``(X, y, weights, offset)`` for some rows (``weights``/``offset`` may be ``None``).
A *chunk source* is a sequence of chunks or a zero-argument callable returning a fresh iterator
over them (a streamed Parquet file is read once per Newton step). Each step sums every chunk's
log-likelihood, gradient and observed Hessian in one fused pass per block (``kernel.block_sums``:
the per-chunk contract), then solves for the step, halving it while the log-likelihood falls.

::

    chunks = row_blocks(X, y, weights, offset)            # in-memory: cache-sized row blocks
    result = newton(get_family("logit"), chunks, start)  # NewtonResult
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from buzzpipe.estimate.families import Family
from buzzpipe.estimate.kernel import chunk_sums

__all__ = [
    "Chunk",
    "ChunkSource",
    "NewtonResult",
    "row_blocks",
    "iter_chunks",
    "accumulate",
    "newton",
    "solve_newton_step",
]

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
ChunkSource = Sequence[Chunk] | Callable[[], Iterable[Chunk]]

# rows per in-memory chunk: the kernel splits each chunk further into cache-sized blocks, so
# in-memory chunks only bound the per-row temporaries
DEFAULT_BLOCK_ROWS = 262_144


def row_blocks(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    block_rows: int | None = None,
) -> list[Chunk]:
    """Views of the arrays in row blocks (no copies)."""
    n = X.shape[0]
    block_rows = DEFAULT_BLOCK_ROWS if block_rows is None else block_rows
    blocks: list[Chunk] = []
    for start in range(0, max(n, 1), block_rows):
        stop = min(start + block_rows, n)
        blocks.append(
            (
                X[start:stop],
                y[start:stop],
                None if weights is None else weights[start:stop],
                None if offset is None else offset[start:stop],
            )
        )
    return blocks


def iter_chunks(source: ChunkSource) -> Iterator[Chunk]:
    """A fresh iterator over the chunks of ``source``."""
    return iter(source() if callable(source) else source)


def accumulate(
    family: Family, params: np.ndarray, source: ChunkSource
) -> tuple[float, np.ndarray, np.ndarray]:
    """Sum of the chunks' log-likelihoods, gradients and observed Hessians at ``params``."""
    sums = chunk_sums(family, params, source)
    return sums.llf, sums.gradient, sums.hessian


def solve_newton_step(gradient: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """The step -H^{-1} g (equilibrated); least squares if -H is singular."""
    if gradient.shape[0] == 0:
        return gradient.copy()
    # equilibrate first: columns on very different scales (employees vs shares) would
    # otherwise cost digits in the factorisation
    # (array methods rather than numpy's module functions: the same numbers, without their
    # dispatch, which cost as much as the arithmetic on the fits' small matrices)
    scale = np.sqrt(np.abs(hessian.diagonal()))
    scale[~(scale > 0)] = 1.0
    information = -hessian / np.multiply.outer(scale, scale)
    if not (np.isfinite(information).all() and np.isfinite(gradient).all()):
        return np.full_like(gradient, np.nan)
    try:
        # -H is positive definite for these log-concave families: one LU solve (numpy's wrapper
        # costs less per call than scipy's at these sizes), checked to be an ascent direction
        step = np.linalg.solve(information, gradient / scale) / scale
        if np.isfinite(step).all() and gradient @ step > 0:
            return step
        raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(information, gradient / scale, rcond=None)[0] / scale


@dataclass
class NewtonResult:
    """Where the Newton loop stopped and the sums evaluated there."""

    params: np.ndarray
    llf: float
    gradient: np.ndarray
    hessian: np.ndarray
    iterations: int
    converged: bool
    message: str = ""


def newton(
    family: Family,
    source: ChunkSource,
    start: np.ndarray,
    *,
    tol: float = 1e-8,
    max_iter: int = 100,
    initial: tuple[float, np.ndarray, np.ndarray] | None = None,
    sums: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]] | None = None,
) -> NewtonResult:
    """Maximise the summed log-likelihood from ``start``.

    Converged when the next step would move no parameter by more than ``tol * (1 + |param|)``
    (Newton converges quadratically, so the estimate after that step is accurate far below
    ``tol``; the step is taken without another pass over the data) or when the Newton decrement
    g'(-H)^{-1}g falls below ``tol**2``. ``initial`` = (llf, gradient, Hessian) at ``start``
    saves the first pass when the caller already knows them. ``sums(params)`` = (llf, gradient,
    Hessian), when given, replaces the pass over ``source`` (an engine that sums elsewhere: the
    Dask partitions, ``streamed.py``).
    """
    if sums is None:

        def sums(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            return accumulate(family, params, source)

    params = np.array(start, dtype=np.float64)
    if initial is None:
        llf, gradient, hessian = sums(params)
    else:  # the caller knows the sums at the start (see fitting.initial_evaluation)
        llf, gradient, hessian = initial
    if not np.isfinite(llf):
        return NewtonResult(params, llf, gradient, hessian, 0, False, "log-likelihood not finite")
    for iteration in range(1, max_iter + 1):
        step = solve_newton_step(gradient, hessian)
        if not np.isfinite(step).all():
            return NewtonResult(params, llf, gradient, hessian, iteration, False, "singular")
        decrement = float(gradient @ step)
        if decrement < tol * tol:
            return NewtonResult(params, llf, gradient, hessian, iteration - 1, True)
        if (np.abs(step) / (1.0 + np.abs(params + step))).max(initial=0.0) < tol:
            # the remaining step is below tol: take it without another pass over the data (the
            # Hessian kept is from one step back, a relative difference of order tol)
            return NewtonResult(params + step, llf, gradient, hessian, iteration, True)
        scale = 1.0
        for _halving in range(40):
            trial = params + scale * step
            trial_llf, trial_gradient, trial_hessian = sums(trial)
            # accept any non-decrease up to rounding of the sum
            if np.isfinite(trial_llf) and trial_llf >= llf - 1e-12 * max(1.0, abs(llf)):
                break
            scale *= 0.5
        else:
            return NewtonResult(
                params, llf, gradient, hessian, iteration, False, "step halving failed"
            )
        moved = (np.abs(trial - params) / (1.0 + np.abs(trial))).max(initial=0.0)
        params, llf, gradient, hessian = trial, trial_llf, trial_gradient, trial_hessian
        if moved < tol:
            # a full step that moved nothing is convergence; a halved one is so only where the
            # point it reached passes the loop's own tests (else the line search stalled away
            # from the maximum, with the gradient still large: not an estimate)
            if scale == 1.0 or _at_maximum(gradient, hessian, params, tol):
                return NewtonResult(params, llf, gradient, hessian, iteration, True)
            return NewtonResult(
                params,
                llf,
                gradient,
                hessian,
                iteration,
                False,
                f"line search stalled (step halved to {scale:.3g}, largest |gradient| "
                f"{np.max(np.abs(gradient), initial=0.0):.3g})",
            )
    return NewtonResult(params, llf, gradient, hessian, max_iter, False, "iteration limit")


def _at_maximum(gradient: np.ndarray, hessian: np.ndarray, params: np.ndarray, tol: float) -> bool:
    """Whether the loop's convergence tests hold at ``params``: the Newton decrement below
    ``tol**2`` or the next step below ``tol`` relative to the parameters."""
    step = solve_newton_step(gradient, hessian)
    if not np.all(np.isfinite(step)):
        return False
    if float(gradient @ step) < tol * tol:
        return True
    return bool(np.max(np.abs(step) / (1.0 + np.abs(params + step)), initial=0.0) < tol)
