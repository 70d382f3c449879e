"""Weighted describe: population shares and means by the sampling weight (Stata's pweight mean),
checked against a direct pandas computation and statsmodels' weighted statistics."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.weightstats import DescrStatsW
from survey_builders import canonical_frame

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.survey import Survey
from buzzpipe.survey.describe import ALL, SUM_OF_WEIGHTS
from buzzpipe.survey.readers import describe_file
from buzzpipe.survey.schema import SCALES


def weighted_frame(n: int = 400, seed: int = 21) -> pd.DataFrame:
    """A survey whose weights favour product innovators, so weighting moves the shares."""
    frame = canonical_frame(n=n, seed=seed, unknown_rate=0.15)
    rng = np.random.default_rng(seed + 1)
    frame["weight"] = rng.uniform(0.5, 3.0, n) * np.where(frame["product"] == 1, 4.0, 1.0)
    return frame


def pweight_mean(values: pd.Series, weights: pd.Series) -> float:
    """sum(w x) / sum(w) over the known values, the way Stata's mean [pweight] computes it."""
    known = values.notna()
    return float((values[known] * weights[known]).sum() / weights[known].sum())


def test_weighted_table_matches_a_direct_computation():
    survey = Survey.from_frame(weighted_frame())
    table = survey.describe(weighted=True)
    plain = survey.describe()
    analysis = survey.analysis_frame()
    weights = analysis["weight"]
    regions = list(analysis["region"].cat.categories)
    checked = 0
    for key, row in table.iterrows():
        if key == SUM_OF_WEIGHTS:
            assert row[ALL] == pytest.approx(weights.sum(), rel=1e-12)
            for region in regions:
                in_region = analysis["region"] == region
                assert row[region] == pytest.approx(weights[in_region].sum(), rel=1e-12)
            continue
        if key[2] == "count":  # counts of firms stay sample counts
            pd.testing.assert_series_equal(row, plain.loc[key])
            continue
        values = statistic_values(analysis, key)
        assert row[ALL] == pytest.approx(pweight_mean(values, weights), rel=1e-12)
        for region in regions:
            in_region = analysis["region"] == region
            expected = pweight_mean(values[in_region], weights[in_region])
            assert row[region] == pytest.approx(expected, rel=1e-12, nan_ok=True)
        checked += 1
    assert checked > 40
    assert "weighted by weight (pweight)" in table.attrs["note"]
    # the weights favour product innovators: the weighted share is higher, as computed
    assert (
        table.loc[("innovation", "product", "share"), ALL]
        > plain.loc[("innovation", "product", "share"), ALL] + 0.1
    )


def statistic_values(analysis: pd.DataFrame, key: tuple[str, str, str]) -> pd.Series:
    """The per-firm values behind one row of the table, NaN where unknown, computed here."""
    section, statistic, _ = key
    if section == "collaboration":
        scale = statistic.split("(")[-1].rstrip(")")
        return analysis[f"any_{scale}"].astype("float64")
    if section.startswith("breadth"):
        return analysis[f"breadth_{statistic}"].astype("float64")
    if section == "partner type by scale":
        scale, partner_type = statistic.split(": ")
        return analysis[f"collab_{scale}_{partner_type}"].astype("float64")
    if section == "partner type, any scale":
        answers = analysis[[f"collab_{s}_{statistic}" for s in SCALES]].astype("float64")
        return pd.Series(
            np.where(
                (answers == 1).any(axis=1), 1.0, np.where((answers == 0).all(axis=1), 0, np.nan)
            )
        )
    if section == "regime":
        regime = analysis["regime"].astype("object")
        return pd.Series(np.where(regime.isna(), np.nan, (regime == statistic).astype(float)))
    if section == "innovation":
        if statistic == "product new to the firm only":
            novelty = analysis["product_novelty"].astype("float64")
            return pd.Series(np.where(novelty.isna(), np.nan, (novelty == 1).astype(float)))
        return analysis[statistic].astype("float64")
    if section == "controls":
        return analysis["employees" if statistic == "employees" else "foreign_share"]
    raise AssertionError(f"no direct computation for {key}")


def test_weighted_shares_agree_with_statsmodels_and_equal_weights_change_nothing():
    frame = weighted_frame(n=300, seed=5)
    survey = Survey.from_frame(frame)
    analysis = survey.analysis_frame()
    table = survey.describe(weighted=True)
    for outcome in ("product", "process", "new_to_market"):
        values = analysis[outcome].astype("float64")
        known = values.notna()
        reference = DescrStatsW(values[known], weights=analysis["weight"][known]).mean
        assert table.loc[("innovation", outcome, "share"), ALL] == pytest.approx(reference, 1e-12)
    # equal weights: the weighted table is the unweighted one (paired with the test above, where
    # unequal weights do move the shares)
    equal = Survey.from_frame(frame.assign(weight=2.5))
    weighted, plain = equal.describe(weighted=True), equal.describe()
    pd.testing.assert_frame_equal(weighted.drop(index=[SUM_OF_WEIGHTS]), plain, rtol=1e-12)


def test_weighted_streaming_equals_reading_whole(tmp_path):
    frame = weighted_frame(n=230, seed=9)
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path, row_group_size=50)
    streamed = describe_file(path, batch_rows=37, weighted=True)
    whole = Survey.from_frame(frame).describe(weighted=True)
    pd.testing.assert_frame_equal(streamed, whole, rtol=1e-12)


def test_weighted_describe_needs_a_weight_column(tmp_path, capsys):
    frame = canonical_frame(n=30, seed=3)
    with pytest.raises(InputError, match="column 'weight'"):
        Survey.from_frame(frame).describe(weighted=True)
    path = tmp_path / "survey.csv"
    frame.to_csv(path, index=False)
    assert main(["describe", str(path), "--weighted"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "survey.csv, column 'weight'" in err
    weighted_frame(n=30).to_csv(path, index=False)
    assert main(["describe", str(path), "--weighted"]) == 0
    out, _ = capsys.readouterr()
    assert "sum of weights (population)" in out and "pweight" in out


def test_weighted_table_is_the_same_bits_at_every_chunking(monkeypatch):
    """The cells are exact sums rounded once: summed in 1, 3 or 7 uneven steps (as Dask
    partitions or a streamed file's batches sum them) the weighted table is the same bit for bit,
    each mean the ratio of math.fsum's sums."""
    import math

    from buzzpipe.survey import describe as module

    survey = Survey.from_frame(weighted_frame(n=700, seed=5))
    tables = []
    for rows in (700, 234, 101):  # 1, 3, 7 (uneven) steps
        monkeypatch.setattr(module, "ROWS_PER_STEP", rows)
        tables.append(survey.describe(weighted=True))
    for table in tables[1:]:
        assert np.array_equal(table.to_numpy(), tables[0].to_numpy(), equal_nan=True)
    analysis = survey.analysis_frame()
    weights = analysis["weight"].to_numpy()
    employees = analysis["employees"].to_numpy(dtype=float)
    known = ~np.isnan(employees)
    expected = math.fsum(weights[known] * employees[known]) / math.fsum(weights[known])
    assert tables[0].loc[("controls", "employees", "mean"), ALL] == expected
