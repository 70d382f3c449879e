"""What the study reads on the Dask client: one list of the columns, and its reductions of a
sample made per partition on the workers with memory's numbers.

``engine.client_columns`` owns the list of the analysis frame's columns the study reads on the
client under ``--engine dask``; ``StudyEngine.reduced`` and its named reductions (a column's
values present, value counts and sets, nunique, per-group totals, a weighted mean and SD) are
computed in memory from the whole frame as the parts computed them, and on dask per partition
of the sample, the partials summed here.
"""

import math

import numpy as np
import pandas as pd
import pytest

from buzzpipe.study.engine import StudyEngine, client_columns, using
from buzzpipe.study.models import rows_kept
from buzzpipe.survey.schema import WEIGHT


def test_the_client_columns_are_the_ones_the_study_reads_here(synthetic_frame):
    frame = synthetic_frame("norway2010", 1, 300)
    listed = client_columns(frame.columns)
    assert listed == [c for c in frame.columns if c in listed]  # the frame's order
    for name in ("region", "industry", "employees", "product", "breadth_international",
                 "breadth_regional_with_group", "regime", "pipeline_exposure"):  # fmt: skip
        assert name in listed, name
    for name in ("firm_id", "country", "any_regional", "any_international"):
        assert name not in listed, name
    named = ["size_class", "district"]  # a user's specification's columns
    assert client_columns(["other", "district", "size_class"], named) == ["district", "size_class"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = pd.array(rng.integers(0, 6, size=n), dtype="Int16")
    counts[rng.random(n) < 0.1] = pd.NA
    region = pd.Categorical(rng.choice(["Oslo", "Bergen", "Trondheim", "Bodø"], size=n))
    return pd.DataFrame(
        {
            "breadth": counts,
            "x": rng.normal(size=n) * 3.0 + 1.0,
            "region": region,
            "industry": pd.array(rng.choice(["a", "b", "c"], size=n), dtype="str"),
            "empty": np.full(n, np.nan),
            WEIGHT: rng.random(n) + 0.5,
        },
        index=np.arange(n) * 3 + 11,
    )


def _pipeline(rows):
    """A module-level function of each row alone (the workers unpickle it by name)."""
    known = rows["breadth"].notna().to_numpy()
    return {
        "pipeline": (rows["breadth"] > 0).to_numpy(dtype=float, na_value=0.0),
        "known": known.astype(float),
    }


def _expected(sample: pd.DataFrame, weights: str | None) -> dict:
    """The reductions as the parts computed them on the whole sample, in pandas and numpy."""
    raw = np.ones(len(sample)) if weights is None else sample[weights].to_numpy(dtype=float)
    normalised = raw / raw.sum()
    values = sample["x"].to_numpy(dtype=float)
    mean = float(normalised @ values)
    deviation = math.sqrt(float(normalised @ (values - mean) ** 2))
    made = _pipeline(sample)
    grouped = pd.DataFrame(made, index=sample.index).groupby(sample["region"], observed=True)
    return {
        "nunique": {c: sample[c].nunique() for c in ("breadth", "region", "industry", "empty")},
        "values": set(sample["breadth"].dropna().astype(int)),
        "counts": sample["region"].value_counts().loc[lambda c: c > 0].to_dict(),
        "present": {c: bool(sample[c].notna().any()) for c in ("breadth", "empty")},
        "moments": (mean, deviation),
        "totals": {name: grouped[name].sum().to_dict() for name in made},
        "sizes": sample["region"].value_counts().loc[lambda c: c > 0].astype(float).to_dict(),
    }


def _found(chosen: StudyEngine, sample: pd.DataFrame, weights: str | None) -> dict:
    totals = chosen.totals_by(sample, "region", _pipeline)
    return {
        "nunique": {
            c: chosen.nunique(sample, c) for c in ("breadth", "region", "industry", "empty")
        },
        "values": set(chosen.value_counts(sample, "breadth")),
        "counts": chosen.value_counts(sample, "region"),
        "present": {c: chosen.any_present(sample, c) for c in ("breadth", "empty")},
        "moments": chosen.weighted_moments(sample, "x", weights),
        "totals": {name: totals[name] for name in ("pipeline", "known")},
        "sizes": totals["rows"],
    }


@pytest.mark.parametrize("weights", [None, WEIGHT])
def test_in_memory_the_reductions_are_the_parts_own_numbers_bit_for_bit(weights):
    frame = _frame(3_000, 1)
    sample = frame.loc[frame["x"] > 0]
    with using(StudyEngine()) as chosen:
        found = _found(chosen, sample, weights)
    expected = _expected(sample, weights)
    assert found == expected  # the weighted SD too, to the last digit (results.json's)


@pytest.mark.parametrize("weights", [None, WEIGHT])
def test_on_dask_the_reductions_are_made_per_partition_with_memorys_numbers(dask_client, weights):
    """The sample's rows selected on the workers (its columns not here), a column changed
    here (sent), and the frame itself: counts and value sets exact, moments to 1e-12."""
    frame = _frame(5_000, 2)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=1_100)
    with using(chosen):
        chosen.keep_frame(frame)
        keep = (frame["x"] > -1).to_numpy()
        on_workers = rows_kept(frame, keep, reads=[])  # no column here but the weights
        assert list(on_workers.columns) == [WEIGHT]
        changed = frame.copy(deep=False)
        changed["x"] = changed["x"] * 2.0
        for sample, expected_rows in (
            (on_workers, frame.loc[keep]),
            (changed, None),
            (frame, None),
        ):
            expected = _expected(frame.loc[keep] if expected_rows is not None else sample, weights)
            found = _found(chosen, sample, weights)
            moments = found.pop("moments")
            wanted = expected.pop("moments")
            assert found == expected
            np.testing.assert_allclose(moments, wanted, rtol=1e-12, atol=0)
