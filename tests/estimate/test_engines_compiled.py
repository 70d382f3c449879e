"""The streamed engine with row groups large enough for the compiled Gram kernels (``gram.py``,
from ``kernel.COMPILED_MIN_ROWS`` rows a chunk): the same fit as in memory and as the BLAS path,
to 1e-10."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_engines import _firms

import buzzpipe as bp
from buzzpipe.estimate import kernel

ROWS = 2 * kernel.COMPILED_MIN_ROWS + 10_000  # two row groups, each above the threshold
FORMULA = "{} ~ x1 + x2 + log(emp) + C(industry)"


@pytest.fixture(scope="module")
def firms(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    frame = _firms(ROWS, seed=5)  # the engines test's firms, more of them
    path = tmp_path_factory.mktemp("large_groups") / "firms.parquet"
    frame.to_parquet(path, row_group_size=ROWS // 2)
    return pd.read_parquet(path), str(path)


def _close(ours, reference, tolerance: float = 1e-10) -> None:
    assert list(ours.params.index) == list(reference.params.index) and ours.nobs == reference.nobs
    np.testing.assert_allclose(
        ours.params.to_numpy(), reference.params.to_numpy(), rtol=0, atol=tolerance
    )
    scale = np.abs(reference.vcov.to_numpy()).max()
    np.testing.assert_allclose(
        ours.vcov.to_numpy(), reference.vcov.to_numpy(), rtol=0, atol=tolerance * scale
    )
    assert abs(ours.llf - reference.llf) <= tolerance * abs(reference.llf)


@pytest.mark.parametrize(
    ("family", "vcov", "options", "compiled"),
    [
        ("logit", "robust", {"weights": "w", "offset": "off"}, "_compiled_sums"),
        ("probit", {"cluster": "region"}, {}, "_compiled_sums"),
        ("ologit", "robust", {"weights": "w"}, "_compiled_gram"),  # its Hessian's X' D X
    ],
)
def test_streamed_chunks_through_the_compiled_kernels_equal_memory_and_blas(
    firms, family, vcov, options, compiled, monkeypatch
) -> None:
    frame, path = firms
    formula = FORMULA.format("o" if family == "ologit" else "y")
    sizes: list[int] = []
    original = getattr(kernel, compiled)

    def spy(*args, **kwargs):
        X = args[2] if compiled == "_compiled_sums" else args[0]
        sizes.append(X.shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(kernel, compiled, spy)
    streamed = bp.fit(formula, path, family, vcov, **options)
    assert sizes and min(sizes) >= kernel.COMPILED_MIN_ROWS and max(sizes) < ROWS - 40
    sizes.clear()
    in_memory = bp.fit(formula, frame, family, vcov, **options)
    assert sizes and max(sizes) > ROWS - 100  # the whole sample in one call
    monkeypatch.setattr(kernel, "COMPILED_MAX_COLUMNS", 0)  # BLAS everywhere
    blas = bp.fit(formula, frame, family, vcov, **options)
    _close(streamed, in_memory)
    _close(streamed, blas)
