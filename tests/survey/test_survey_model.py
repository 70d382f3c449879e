"""The survey model: validation of canonical frames and the derived measures.

Derived measures are checked against a plain row-by-row implementation written here from the
definitions in DESIGN.md, on random surveys with "don't know" answers.
"""

import numpy as np
import pandas as pd
import pytest
from survey_builders import REGIONS, canonical_frame

from buzzpipe.errors import InputError
from buzzpipe.survey import Survey
from buzzpipe.survey.schema import PARTNER_TYPES, SCALES, collab_column


def reference_measures(frame: pd.DataFrame) -> list[dict]:
    """Breadth, flags, regime and novelty firm by firm, straight from the definitions."""
    rows = []
    for _, firm in frame.iterrows():
        row = {}
        for scale in SCALES:
            answers = [firm[collab_column(scale, t)] for t in PARTNER_TYPES if t != "group"]
            answers_group = [firm[collab_column(scale, t)] for t in PARTNER_TYPES]
            known = [a for a in answers if not pd.isna(a)]
            row[f"breadth_{scale}"] = sum(a == 1 for a in known) if known else None
            known_group = [a for a in answers_group if not pd.isna(a)]
            row[f"breadth_{scale}_with_group"] = (
                sum(a == 1 for a in known_group) if known_group else None
            )
            breadth = row[f"breadth_{scale}"]
            row[f"any_{scale}"] = None if breadth is None else int(breadth > 0)
        local, abroad = row["any_regional"], row["any_international"]
        if local is None or abroad is None:
            row["regime"] = None
        else:
            row["regime"] = ["none", "local_only", "global_only", "both"][local + 2 * abroad]
        if firm["new_to_market"] == 1:
            row["product_novelty"] = 2
        elif firm["product"] == 0:
            row["product_novelty"] = 0
        elif firm["product"] == 1 and firm["new_to_market"] == 0:
            row["product_novelty"] = 1
        else:
            row["product_novelty"] = None
        rows.append(row)
    return rows


def as_python(value):
    return None if pd.isna(value) else (value if isinstance(value, str) else int(value))


@pytest.mark.parametrize("seed", range(4))
def test_derived_measures_match_the_definitions_firm_by_firm(seed):
    frame = canonical_frame(seed=seed, unknown_rate=0.3 if seed % 2 else 0.05)
    frame.loc[frame.index[:3], [collab_column("regional", t) for t in PARTNER_TYPES]] = np.nan
    frame.loc[frame.index[3], "product"] = np.nan
    frame.loc[frame.index[4], ["product", "new_to_market"]] = [1, np.nan]
    analysis = Survey.from_frame(frame).analysis_frame()
    expected = reference_measures(frame)
    for column in expected[0]:
        got = [as_python(v) for v in analysis[column].astype("object")]
        assert got == [row[column] for row in expected], column
    # all-unknown at a scale gives missing breadth, so a missing regime
    assert analysis["breadth_regional"].iloc[:3].isna().all()
    assert analysis["regime"].iloc[:3].isna().all()


def test_types_and_category_order():
    frame = canonical_frame()
    survey = Survey.from_frame(frame)
    firms = survey.firms
    assert str(firms[collab_column("regional", "suppliers")].dtype) == "Int8"
    assert str(firms["product"].dtype) == "Int8"
    # region labels sort alphabetically without a declared order; industry codes numerically
    assert list(firms["region"].cat.categories) == sorted(REGIONS)
    assert list(firms["industry"].cat.categories) == [1, 2, 3, 4]
    assert survey.reference == {"region": "Bergen", "industry": 1}
    # product_novelty needs the new-to-market answer
    assert (
        "product_novelty"
        not in Survey.from_frame(frame.drop(columns="new_to_market")).analysis_frame()
    )
    regime = survey.analysis_frame()["regime"]
    assert list(regime.cat.categories) == ["none", "local_only", "global_only", "both"]


def test_reference_categories_come_first_and_declared_order_is_kept():
    frame = canonical_frame()
    frame["region"] = pd.Categorical(frame["region"], categories=REGIONS + ["Tromso"])
    survey = Survey.from_frame(frame, reference={"industry": 3})
    firms = survey.firms
    # the declared order stays; an empty category cannot be the reference, so it goes
    assert list(firms["region"].cat.categories) == REGIONS
    assert list(firms["industry"].cat.categories) == [3, 1, 2, 4]
    assert survey.reference == {"region": "Oslo", "industry": 3}
    with pytest.raises(InputError, match="reference category not found.*'Tromso'"):
        Survey.from_frame(frame, reference={"region": "Tromso"})


def test_the_callers_frame_is_never_modified():
    frame = canonical_frame()
    frame["region"] = frame["region"].astype("object")
    before = frame.copy()
    survey = Survey.from_frame(frame)
    survey.analysis_frame()
    pd.testing.assert_frame_equal(frame, before)
    # nor can a caller change the survey through what it hands out
    handed_out = survey.firms
    handed_out.loc[0, "employees"] = -5
    analysis = survey.analysis_frame()
    analysis.loc[0, "breadth_regional"] = 99
    assert survey.firms.loc[0, "employees"] > 0
    assert survey.analysis_frame().loc[0, "breadth_regional"] != 99


def test_breadth_given_directly_and_agreement_with_collaboration():
    frame = canonical_frame(unknown_rate=0)
    derived = Survey.from_frame(frame).analysis_frame()
    only_breadth = frame[[c for c in frame.columns if not c.startswith("collab_")]].copy()
    for scale in SCALES:
        only_breadth[f"breadth_{scale}"] = derived[f"breadth_{scale}"].astype(int)
    survey = Survey.from_frame(only_breadth)
    analysis = survey.analysis_frame()
    assert survey.scales == SCALES and survey.partner_types == ()
    pd.testing.assert_series_equal(analysis["regime"], derived["regime"])
    assert "breadth_regional_with_group" not in analysis
    # both given and agreeing: accepted; disagreeing: an error naming the row
    both = frame.copy()
    both["breadth_regional"] = derived["breadth_regional"].astype(int)
    Survey.from_frame(both)
    both.loc[7, "breadth_regional"] += 1
    with pytest.raises(InputError) as error:
        Survey.from_frame(both, source="firms.csv")
    message = str(error.value)
    assert "breadth disagrees" in message and "row 8" in message and "firms.csv" in message


def test_a_dont_know_answer_allows_either_breadth():
    frame = canonical_frame(n=2, unknown_rate=0)
    for t in PARTNER_TYPES:
        frame[collab_column("regional", t)] = [1, 0]
    frame.loc[0, collab_column("regional", "suppliers")] = np.nan
    frame["breadth_regional"] = [6, 0]  # suppliers unknown: 5 or 6 types without group
    Survey.from_frame(frame)
    frame["breadth_regional"] = [4, 0]
    with pytest.raises(InputError, match="breadth disagrees"):
        Survey.from_frame(frame)


def test_survey_without_regional_scale_uses_national_as_local():
    frame = canonical_frame()
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("collab_regional")])
    survey = Survey.from_frame(frame)
    assert survey.scales == ("national", "international")
    assert survey.local_scale == "national"
    analysis = survey.analysis_frame()
    local, abroad = analysis["any_national"], analysis["any_international"]
    both = (local == 1) & (abroad == 1)
    assert ((analysis["regime"] == "both") == both.fillna(False)).all()


def error_message(frame, **kwargs) -> str:
    with pytest.raises(InputError) as error:
        Survey.from_frame(frame, source="firms.csv", **kwargs)
    message = str(error.value)
    assert "\n" not in message and message.startswith("firms.csv")
    return message


@pytest.mark.parametrize(
    ("column", "row", "value", "pieces"),
    [
        ("foreign_share", 4, 1.5, ["'foreign_share'", "row 5", "1.5", "[0, 1]"]),
        ("employees", 2, 0, ["'employees'", "row 3", "> 0"]),
        ("employees", 2, "many", ["not a number", "'many'"]),
        ("product", 0, 2, ["not a 0/1 value", "'product'", "row 1", "(got 2"]),
        ("collab_regional_suppliers", 9, -1, ["not a 0/1", "row 10"]),
        ("foreign_share", 1, np.inf, ["infinite"]),
        ("region", 3, None, ["missing value", "'region'", "row 4"]),
        ("firm_id", 5, 100, ["duplicate firm id", "rows 1, 6"]),
        ("firm_id", 5, None, ["missing firm id", "row 6"]),
    ],
)
def test_bad_values_name_file_column_row_value_and_expectation(column, row, value, pieces):
    frame = canonical_frame(unknown_rate=0)
    if isinstance(value, str) or value is None:
        frame[column] = frame[column].astype("object")
    frame.loc[row, column] = value
    message = error_message(frame)
    for piece in pieces:
        assert piece in message


def test_new_to_market_requires_a_product_innovation():
    frame = canonical_frame(unknown_rate=0)
    frame.loc[3, ["product", "new_to_market"]] = [0, 1]
    message = error_message(frame)
    assert "new to the market without a product" in message and "row 4" in message


def test_negative_breadth_and_missing_and_unknown_columns():
    frame = canonical_frame(unknown_rate=0)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("collab_")])
    frame["breadth_regional"] = 1.0
    frame.loc[2, "breadth_regional"] = -1
    assert "row 3" in error_message(frame) and "breadth_regional" in error_message(frame)
    frame.loc[2, "breadth_regional"] = 1.5
    assert "whole number" in error_message(frame)
    assert "missing column" in error_message(frame.drop(columns="employees"))
    no_collaboration = frame.drop(columns="breadth_regional")
    assert "no collaboration columns" in error_message(no_collaboration)
    odd = frame.assign(breadth_regional=1.0, collab_galactic_suppliers=1)
    assert "unknown scale" in error_message(odd)
    odd = frame.assign(breadth_regional=1.0, collab_regional_aliens=1)
    assert "aliens" in error_message(odd, partner_types=PARTNER_TYPES)
    assert "no firms" in error_message(frame.iloc[:0])


def test_sampling_weight_must_be_positive():
    frame = canonical_frame(unknown_rate=0).assign(weight=2.0)
    assert Survey.from_frame(frame).firms["weight"].eq(2.0).all()
    frame.loc[1, "weight"] = 0
    assert "sampling weight > 0" in error_message(frame)
    frame.loc[1, "weight"] = np.nan
    assert "missing value" in error_message(frame)


def test_breadth_and_its_counts_summed_column_by_column_equal_the_answer_matrix() -> None:
    """Breadth per scale (and the yes / don't-know counts the breadth check reads) summed one
    answer column at a time equal the firms x partner types matrix they were read from before:
    the count of yes answers, missing where every answer is missing."""
    from buzzpipe.survey import measures

    rng = np.random.default_rng(21)
    n = 2_000
    columns = {}
    for position, kind in enumerate(PARTNER_TYPES):
        values = rng.choice([0.0, 1.0, np.nan], n, p=[0.5, 0.3, 0.2])
        values[: n // 10] = np.nan  # firms that answered nothing at the scale
        name = collab_column("regional", kind)
        if position % 2:  # nullable integers and floats with NaN
            columns[name] = pd.array(pd.Series(values).astype("Int8").to_numpy(), dtype="Int8")
        else:
            columns[name] = values
    firms = pd.DataFrame(columns, index=pd.RangeIndex(n) + 5)
    for with_group in (False, True):
        kinds = [t for t in PARTNER_TYPES if with_group or t != "group"]
        matrix = np.column_stack(
            [firms[collab_column("regional", t)].to_numpy("float64", na_value=np.nan)
             for t in kinds]
        )  # fmt: skip
        yes = (matrix == 1).sum(axis=1)
        unknown = np.isnan(matrix).sum(axis=1)
        expected = pd.Series(
            pd.array(np.where(np.isnan(matrix).all(axis=1), None, yes), dtype="Int16"),
            index=firms.index,
        )
        breadth = measures.breadth_from_collaboration(
            firms, "regional", PARTNER_TYPES, with_group=with_group
        )
        pd.testing.assert_series_equal(breadth, expected)
        counted = measures.yes_and_unknown(firms, "regional", PARTNER_TYPES, with_group=with_group)
        np.testing.assert_array_equal(counted[0], yes)
        np.testing.assert_array_equal(counted[1], unknown)
        assert counted[0].dtype == yes.dtype and counted[1].dtype == unknown.dtype
        assert breadth.isna().sum() >= n // 10 and breadth.max() >= 2
    assert (
        measures.breadth_from_collaboration(firms, "national", PARTNER_TYPES, with_group=False)
        is None
    )
