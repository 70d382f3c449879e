"""What the study reads on the Dask client: no column of the analysis frame, and its
reductions of a sample made per partition on the workers with memory's numbers.

Under ``--engine dask`` the client's copy of the analysis frame has no column (the survey stage
keeps it so); ``StudyEngine.reduced`` and its named reductions (a column's values present,
value counts and sets, the values in the order the rows show them, nunique, per-group totals,
a weighted mean and SD) are computed in memory from the whole frame as the parts computed
them, and on dask per partition of the sample, the partials summed here.
"""

import math

import numpy as np
import pandas as pd
import pytest

from buzzpipe.study.engine import StudyEngine, using
from buzzpipe.study.models import rows_kept
from buzzpipe.survey.schema import WEIGHT


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = pd.array(rng.integers(0, 6, size=n), dtype="Int16")
    counts[rng.random(n) < 0.1] = pd.NA
    region = pd.Categorical(rng.choice(["Oslo", "Bergen", "Trondheim", "Bodø"], size=n))
    # values that first appear late in the rows (in later partitions on dask), some missing
    at = np.arange(n)
    sector = np.where(at < 0.6 * n, np.where(at % 2, "x", "y"), np.where(at % 3, "x", "z"))
    sector = np.where(at >= 0.9 * n, np.where(at % 2, "w", "y"), sector).astype(object)
    sector[at % 13 == 5] = None
    return pd.DataFrame(
        {
            "breadth": counts,
            "x": rng.normal(size=n) * 3.0 + 1.0,
            "region": region,
            "industry": pd.array(rng.choice(["a", "b", "c"], size=n), dtype="str"),
            "empty": np.full(n, np.nan),
            WEIGHT: rng.random(n) + 0.5,
            "sector": pd.array(sector, dtype="str"),
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
        "first seen": {c: list(sample[c].dropna().unique()) for c in ("breadth", "sector")},
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
        "first seen": {c: chosen.unique(sample, c) for c in ("breadth", "sector")},
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
        on_workers = rows_kept(frame, keep, reads=[])  # no column here, the weights neither
        assert list(on_workers.columns) == []
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


def test_a_columns_mean_is_pandas_in_memory_and_the_partitions_sums_on_dask(dask_client):
    """StudyEngine.mean: in memory pandas' own mean bit for bit; on dask the partitions' sums
    and counts of the values present (missing left out), the same mean to rounding, for the
    frame and a sample of its rows selected on the workers whose column the client lacks."""
    frame = _frame(5_000, 3)
    frame.loc[frame.index[::7], "x"] = np.nan
    with using(StudyEngine()) as chosen:
        assert chosen.mean(frame, "x") == float(frame["x"].mean())
        assert math.isnan(chosen.mean(frame, "empty"))
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=900)
    with using(chosen):
        chosen.keep_frame(frame)
        keep = (frame["breadth"] > 1).to_numpy(dtype=bool, na_value=False)
        sample = rows_kept(frame, keep, reads=[])
        assert "x" not in sample.columns
        for rows, expected in ((frame, frame["x"]), (sample, frame.loc[keep, "x"])):
            assert math.isclose(chosen.mean(rows, "x"), float(expected.mean()), rel_tol=1e-13)
        assert math.isnan(chosen.mean(frame, "empty"))


def _narrowed(chosen: StudyEngine, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` kept on the workers whole, the client holding no column of it (as the survey
    stage keeps it on dask): the narrow frame is the kept frame here."""
    chosen.keep_frame(frame)
    narrow = frame.iloc[:, :0]
    chosen._frame = (narrow, *chosen._frame[1:])
    return narrow


def test_the_outcomes_samples_are_defined_on_the_workers_with_memorys_fits(dask_client):
    """fit_outcome_models on dask, the client's frame holding no column: the masks (every
    model variable, the partner-type answers the client lacks) are made on the workers, the
    sample here holds no column, and every model (the partner-type
    model too) is memory's. Before, the masks read the partner-type answers here: without them
    the partner-type model was left out."""
    import buzzpipe as bp
    from buzzpipe.study.models import fit_outcome_models, partner_type_columns

    frame = bp.synthesize("norway2010", seed=5, firms=700).analysis_frame()
    frame.loc[frame.index[::37], "collab_national_customers"] = pd.NA  # partner answers missing
    frame.loc[frame.index[::53], "foreign_share"] = np.nan  # rows left out of every model
    with using(StudyEngine()):
        memory_sample, memory = fit_outcome_models(frame, "product")
    assert "partner_types" in memory and memory["partner_types"][1].nobs < len(memory_sample)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=200)
    with using(chosen):
        narrow = _narrowed(chosen, frame)
        assert not [c for c in narrow.columns if c.startswith("collab_")]
        assert partner_type_columns(narrow) == partner_type_columns(frame)
        sample, fits = fit_outcome_models(narrow, "product")
        # its rows on the workers, its labels a range of its own: the fits' rows as the
        # frame's labels are asked of the engine, and are memory's (the partner-type model's
        # rows a sample of the sample's)
        assert len(sample) == len(memory_sample) and sample.index.max() < 0
        assert set(sample.columns) <= set(narrow.columns)
        assert list(fits) == list(memory)
        for name, (_spec, fitted) in fits.items():
            expected = memory[name][1]
            assert fitted.nobs == expected.nobs, name
            assert chosen.labelled(fitted, narrow).row_ids.equals(expected.row_ids), name
            np.testing.assert_allclose(fitted.params, expected.params, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(fitted.bse, expected.bse, rtol=1e-10, atol=1e-10)


def test_the_controls_columns_on_the_workers_alone_give_memorys_models_and_margins(
    dask_client,
):
    """A client frame without the numeric controls (employees, foreign_share, openness: on
    the workers alone): the controls the survey has are asked of the engine, the margins'
    continuous variables and their types read from the workers' columns, and every model and
    average marginal effect is memory's (1e-10). Before, such a frame was modelled without
    foreign_share and openness, and the margins left employees out."""
    import buzzpipe as bp
    from buzzpipe.study.models import (
        PRIMARY_INFERENCE,
        breadth_terms,
        control_terms,
        fit_outcome_models,
        inference_of,
        marginal_effects,
    )
    from buzzpipe.survey.schema import NUMERIC_CONTROLS

    frame = bp.synthesize("norway2010", seed=9, firms=600).analysis_frame()
    inference = inference_of(PRIMARY_INFERENCE)

    def effects(data) -> tuple[list, dict]:
        sample, fits = fit_outcome_models(data, "product")
        fitted = fits["controls"][1]
        made = marginal_effects(fitted, sample, breadth_terms(data), inference, every=True)
        return control_terms(data), fits, made

    with using(StudyEngine()):
        memory = effects(frame)
    assert "employees: dy/dx" in memory[2] and "foreign_share" in memory[0][1]
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=170)
    with using(chosen):
        narrow = _narrowed(chosen, frame)
        narrow = narrow.drop(columns=[c for c in NUMERIC_CONTROLS if c in narrow.columns])
        chosen._frame = (narrow, *chosen._frame[1:])
        on_dask = effects(narrow)
        # a frame of the kept rows made here with pandas: its rows hold them on the workers
        subset = narrow.loc[narrow.index[::3]]
        assert "employees" in chosen.columns(subset) and "employees" not in subset.columns
        assert control_terms(subset) == memory[0]
    assert on_dask[0] == memory[0]
    assert list(on_dask[1]) == list(memory[1])
    for name, (_spec, fitted) in on_dask[1].items():
        np.testing.assert_allclose(fitted.params, memory[1][name][1].params, rtol=1e-10, atol=1e-10)
    assert list(on_dask[2]) == list(memory[2])
    for label, found in on_dask[2].items():
        expected = memory[2][label]
        for field in ("estimate", "std_error", "p_value"):
            assert math.isclose(
                getattr(found, field), getattr(expected, field), rel_tol=1e-10, abs_tol=1e-10
            ), (label, field)


def test_the_dropped_firms_note_is_counted_on_the_workers_as_in_memory(dask_client):
    import buzzpipe as bp
    from buzzpipe.study.models import dropped_firms_note, estimation_sample, main_specifications

    frame = bp.synthesize("norway2010", seed=6, firms=500).analysis_frame()
    frame.loc[frame.index[::29], "product"] = pd.NA
    frame.loc[frame.index[::31], "employees"] = 0
    nested = [s for s in main_specifications(frame, "product") if s.name != "partner_types"]
    with using(StudyEngine()):
        expected = dropped_firms_note(frame, estimation_sample(frame, nested), nested)
    assert "product missing" in expected and "employees not positive" in expected
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=150)
    with using(chosen):
        narrow = _narrowed(chosen, frame)
        sample = estimation_sample(narrow, nested, list(narrow.columns))
        assert dropped_firms_note(narrow, sample, nested) == expected


def _parts_of_the_sample(chosen, frame, outcome: str = "product") -> dict:
    """Common support (its value sets, categories model and standardised effects) and
    complementarity (its regime categorical) on ``outcome``'s sample, as results records."""
    from buzzpipe.results import StudyResults
    from buzzpipe.results.contract import encode
    from buzzpipe.study.common_support import compare_on_common_support
    from buzzpipe.study.complementarity import assess_complementarity
    from buzzpipe.study.models import (
        PRIMARY_INFERENCE,
        control_terms,
        fit_outcome_models,
        inference_of,
    )
    from buzzpipe.study.sensitivity import supermodularity_pending

    inference = inference_of(PRIMARY_INFERENCE)
    found = StudyResults()
    with using(chosen):
        if chosen.name == "dask":
            frame = _narrowed(chosen, frame)
        controls = control_terms(frame)
        sample, fits = fit_outcome_models(frame, outcome, controls=controls)
        fitted = fits["controls"][1]
        compare_on_common_support(
            found, outcome, fitted, sample, controls[0], "logit", PRIMARY_INFERENCE, inference
        )
        assess_complementarity(
            found, outcome, sample, controls[0], "logit", PRIMARY_INFERENCE, inference
        )
        # the sensitivity part's regime indicators, of the rows whose regime is known
        regimes = supermodularity_pending(outcome, sample, controls[0], "logit", 1, 9).fitted
        if chosen.name == "dask":
            assert "regime" not in sample.columns
    return {
        "tests": encode(found.tests),
        "descriptions": encode(found.descriptions),
        "models": encode(found.models),
        "regimes": regimes.params.to_dict(),
    }


def test_common_support_and_complementarity_on_dask_read_no_regime_here(dask_client):
    """The categories model's capped breadth, complementarity's regime categorical and the
    sensitivity part's regime indicators made on the workers, breadth's value sets and
    weighted SD summed over partitions: memory's records to 1e-10 with a client frame that has
    no regime. Before, they read the regime or breadth here (complementarity and the
    indicators failed without the regime)."""
    from json_differences import differences

    import buzzpipe as bp

    frame = bp.synthesize("norway2010", seed=7, firms=700).analysis_frame()
    memory = _parts_of_the_sample(StudyEngine(), frame)
    assert "categories_first_partner_international" in memory["descriptions"]["product"]
    assert "standardised_international" in memory["descriptions"]["product"]
    assert "supermodularity" in memory["tests"]["product"]
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=200)
    on_dask = _parts_of_the_sample(chosen, frame)
    assert differences(memory, on_dask) == []


@pytest.mark.slow
def test_the_battery_on_dask_with_no_column_on_the_client_gives_the_memory_numbers(
    dask_client,
):
    """The whole battery (one outcome, sensitivity, heterogeneity, spill-over with links, the
    counterfactuals) on dask, the client's frame holding no column as the survey stage keeps
    it: results.json's numbers are memory's (1e-10)."""
    import json

    from json_differences import differences

    import buzzpipe as bp
    from buzzpipe.study.battery import run_study

    frame = bp.synthesize("norway2010", seed=8, firms=700, edge_list=True).analysis_frame()
    options = {
        "seed": 1,
        "wild_bootstrap_draws": 199,
        "bootstrap_replications": 0,
        "outcomes": ["product"],
    }
    with using(StudyEngine()):
        memory = json.loads(run_study(frame, **options).to_json())
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=250)
    with using(chosen):
        narrow = _narrowed(chosen, frame)
        on_dask = json.loads(run_study(narrow, **options).to_json())
    assert memory["models"]["product"]["partner_types"]
    assert "spillover_placebo" in memory["tests"]["product"]
    assert differences(memory, on_dask) == []
