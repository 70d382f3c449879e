"""The wild bootstrap's terms side by side over chunks: their passes merged, the same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import buzzpipe as bp
from buzzpipe.errors import InputError
from buzzpipe.estimate.wild_bootstrap import for_each_term, wild_score_bootstrap

TERMS = ["x1", "x2", "log(emp)"]


class _Counting:
    """A source that counts the passes made over it."""

    def __init__(self, source) -> None:
        self.source, self.passes = source, 0

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def map_designs(self, spec, function, *args):
        self.passes += 1
        return self.source.map_designs(spec, function, *args)


def _raising(chunk):
    raise ValueError(f"no sums on {chunk.nobs} rows")


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(3)
    n = 6_000
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "emp": rng.integers(1, 500, size=n).astype(float),
            "city": rng.integers(0, 6, size=n),
        }
    )
    eta = 0.3 * frame.x1 - 0.1 * frame.x2 + 0.1 * np.log(frame.emp) - 0.5
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    path = tmp_path_factory.mktemp("merged") / "firms.parquet"
    frame.to_parquet(path, row_group_size=1_500)
    return frame, str(path)


def _each_term(bootstrap, term):
    test = bootstrap.test(term)
    found = bootstrap.confidence_set(term)
    return test.p_value, test.statistic, found.intervals, found.notes


@pytest.mark.filterwarnings("ignore:only 6 clusters")
@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_terms_side_by_side_give_the_loops_numbers_in_fewer_passes(survey, engine, request):
    frame, path = survey
    if engine == "dask":
        request.getfixturevalue("dask_client")
    fit = bp.fit("y ~ x1 + x2 + log(emp)", frame, "logit", {"cluster": "city"})
    options = {"draws": 99, "seed": 5, "engine": engine}
    alone = wild_score_bootstrap(fit, path, **options)
    alone.source = _Counting(alone.source)
    looped = [_each_term(alone, term) for term in TERMS]
    together = wild_score_bootstrap(fit, path, **options)
    together.source = _Counting(together.source)
    merged = for_each_term(together, lambda term: _each_term(together, term), TERMS)
    assert merged == looped  # bit for bit: each call's chunks are summed in the same tree
    assert together.source.passes == together.merged_passes
    # each term alone makes about as many passes; merged they are about one term's
    assert together.source.passes < 0.5 * alone.source.passes
    in_memory = wild_score_bootstrap(fit, frame, draws=99, seed=5)
    for term, (p_value, statistic, intervals, _notes) in zip(TERMS, merged, strict=True):
        assert p_value == in_memory.test(term).p_value
        assert abs(statistic - in_memory.test(term).statistic) <= 1e-8
        expected = in_memory.confidence_set(term).intervals
        np.testing.assert_allclose(np.ravel(intervals), np.ravel(expected), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:only 6 clusters")
def test_an_error_is_the_first_terms_and_a_failing_call_does_not_spoil_the_others(survey):
    frame, path = survey
    fit = bp.fit("y ~ x1 + x2 + log(emp)", frame, "logit", {"cluster": "city"})
    bootstrap = wild_score_bootstrap(fit, path, draws=99, seed=5, engine="stream")
    expected = {term: bootstrap.test(term).p_value for term in TERMS}
    done = []

    def work(term):
        if term == "x2":  # its pass raises on the chunks, merged with the others' passes
            bootstrap.source.map_designs(bootstrap.spec, _raising)
        if term == "log(emp)":
            raise InputError("the third term's own error")
        done.append(term)
        return bootstrap.test(term).p_value

    with pytest.raises(ValueError, match="no sums on 1500 rows"):  # x2's, the first in order
        for_each_term(bootstrap, work, TERMS)
    assert done == ["x1"]
    assert for_each_term(bootstrap, lambda term: bootstrap.test(term).p_value, TERMS) == [
        expected[term] for term in TERMS
    ]
