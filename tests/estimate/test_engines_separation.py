"""Perfect prediction on the chunked engines: Stata's rule (the indicator omitted, its cell's
rows not used) as in memory, so memory, streamed Parquet and Dask give the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import buzzpipe as bp

FORMULA = "y ~ x1 + x2 + C(industry)"


@pytest.fixture(scope="module")
def separated(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    """20,000 firms; industry e never succeeds and industry f always does (weighted)."""
    rng = np.random.default_rng(19)
    n = 20_000
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(list("abcdef"), size=n, p=[0.3, 0.3, 0.2, 0.1, 0.05, 0.05]),
            "region": rng.integers(0, 30, size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )
    eta = 0.5 * frame.x1 - 0.3 * frame.x2 + 0.2 * (frame.industry == "b")
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame.loc[frame.industry == "e", "y"] = 0.0
    frame.loc[frame.industry == "f", "y"] = 1.0
    frame.loc[rng.choice(n, 40, replace=False), "x2"] = np.nan
    path = tmp_path_factory.mktemp("separated") / "firms.parquet"
    frame.to_parquet(path, row_group_size=2_500)
    return pd.read_parquet(path), str(path)


def _same(a, b) -> None:
    assert list(a.params.index) == list(b.params.index)
    assert (a.nobs, a.notes, a.n_dropped_missing) == (b.nobs, b.notes, b.n_dropped_missing)
    assert np.array_equal(np.asarray(a.row_ids), np.asarray(b.row_ids))
    np.testing.assert_allclose(b.params.to_numpy(), a.params.to_numpy(), rtol=0, atol=1e-10)
    scale = np.abs(a.vcov.to_numpy()).max()
    np.testing.assert_allclose(b.vcov.to_numpy(), a.vcov.to_numpy(), rtol=0, atol=1e-10 * scale)
    assert abs(a.llf - b.llf) <= 1e-10 * abs(a.llf)


@pytest.mark.parametrize(
    "family, options",
    [
        ("logit", {"vcov": "robust", "weights": "w"}),
        ("probit", {"vcov": {"cluster": "region"}}),
    ],
)
def test_streamed_fits_drop_perfectly_predicted_cells_as_memory_does(separated, family, options):
    frame, path = separated
    memory = bp.fit(FORMULA, frame, family, **options)
    streamed = bp.fit(FORMULA, path, family, engine="stream", **options)
    assert any("C(industry)[T.e] != 0 predicts failure perfectly" in n for n in memory.notes)
    assert any("C(industry)[T.f] != 0 predicts success perfectly" in n for n in memory.notes)
    assert "C(industry)[T.e]" not in memory.params.index
    _same(memory, streamed)


def test_dask_fits_drop_perfectly_predicted_cells_as_memory_does(separated, dask_client):
    frame, path = separated
    options = {"vcov": "robust", "weights": "w"}
    memory = bp.fit(FORMULA, frame, "logit", **options)
    _same(memory, bp.fit(FORMULA, path, "logit", engine="dask", **options))


@pytest.fixture(scope="module")
def reference_separated(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    """20,000 firms. Binary y: industry a (the reference level) never succeeds. Ordered q
    (0, 1, 2): sector a (its reference, none in industry f) lies wholly in category 0, industry f
    wholly in 2."""
    rng = np.random.default_rng(23)
    n = 20_000
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(list("abcdef"), size=n, p=[0.1, 0.3, 0.25, 0.2, 0.1, 0.05]),
            "sector": rng.choice(list("abc"), size=n, p=[0.05, 0.5, 0.45]),
            "region": rng.integers(0, 30, size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )
    eta = 0.5 * frame.x1 - 0.3 * frame.x2 + 0.2 * (frame.industry == "b")
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame.loc[frame.industry == "a", "y"] = 0.0
    latent = eta + rng.logistic(size=n)
    frame["q"] = np.digitize(latent, [-0.5, 0.8]).astype(float)
    frame.loc[(frame.industry == "f") & (frame.sector == "a"), "sector"] = "b"
    frame.loc[frame.sector == "a", "q"] = 0.0
    frame.loc[frame.industry == "f", "q"] = 2.0
    frame.loc[rng.choice(n, 40, replace=False), "x1"] = np.nan
    path = tmp_path_factory.mktemp("reference") / "firms.parquet"
    frame.to_parquet(path, row_group_size=2_500)
    return pd.read_parquet(path), str(path)


@pytest.mark.parametrize(
    "formula, family, options, expected",
    [
        (
            "y ~ x1 + x2 + C(industry)",
            "logit",
            {"vcov": "robust", "weights": "w"},
            ["C(industry) = a (the reference level) predicts failure perfectly"],
        ),
        (
            "y ~ x1 + x2 + C(industry) + C(sector)",
            "probit",
            {"vcov": {"cluster": "region"}},
            ["C(industry) = a (the reference level) predicts failure perfectly"],
        ),
        (
            "q ~ x1 + x2 + C(industry) + C(sector)",
            "ologit",
            {"vcov": "robust", "weights": "w"},
            [
                "C(sector) = a (the reference level) predicts q = 0 perfectly",
                "C(industry)[T.f] != 0 predicts q = 2 perfectly",
            ],
        ),
    ],
    ids=["logit", "probit", "ologit"],
)
def test_streamed_fits_drop_reference_and_extreme_cells_as_memory_does(
    reference_separated, formula, family, options, expected
):
    frame, path = reference_separated
    memory = bp.fit(formula, frame, family, **options)
    for words in expected:
        assert any(words in note for note in memory.notes), memory.notes
    streamed = bp.fit(formula, path, family, engine="stream", **options)
    _same(memory, streamed)


def test_dask_fits_drop_reference_and_extreme_cells_as_memory_does(
    reference_separated, dask_client
):
    frame, path = reference_separated
    formula, options = "q ~ x1 + x2 + C(industry) + C(sector)", {"vcov": "robust", "weights": "w"}
    memory = bp.fit(formula, frame, "ologit", **options)
    _same(memory, bp.fit(formula, path, "ologit", engine="dask", **options))
