"""From the study's results format to the report view: labels, factors, evidence, verdicts."""

import math

import pytest
from test_report_samples import REGIONS, describe_frame, make_study_results

from buzzpipe.report.findings import findings
from buzzpipe.report.tables import all_tables
from buzzpipe.report.view import report_view
from buzzpipe.report.view_schema import validate_view
from buzzpipe.report.wording import inference_text, term_label
from buzzpipe.results import Descriptives, Inference, Term, validate_results
from buzzpipe.results.contract import encode


@pytest.fixture(scope="module")
def views():
    return {world: report_view(make_study_results(world)) for world in ("pipelines", "buzz")}


def test_views_of_study_results_meet_the_view_schema(views):
    for view in views.values():
        validate_view(view)


@pytest.mark.parametrize(
    "name, term, label",
    [
        ("Intercept", Term("intercept"), "Constant"),
        ("cut2", Term("cut", number=2), "Cut 2"),
        (
            "breadth_international",
            Term("continuous", "breadth_international"),
            "Breadth, international",
        ),
        (
            "breadth_regional_with_group",
            Term("continuous", "breadth_regional_with_group"),
            "Breadth with own group, regional",
        ),
        (
            "collab_national_research_institutes",
            Term("continuous", "collab_national_research_institutes"),
            "Research institutes, national",
        ),
        ("np.log(employees)", Term("continuous", "np.log(employees)"), "Employees (log)"),
        (
            "breadth_regional:region_size",
            Term(
                "interaction",
                parts=[Term("continuous", "breadth_regional"), Term("continuous", "region_size")],
            ),
            "Breadth, regional \u00d7 City-region size (log firms)",
        ),
        (
            "C(industry)[T.business_services]",
            Term("factor_level", "industry", "business_services"),
            "industry: business services",
        ),
    ],
)
def test_term_labels_come_from_the_term_kinds(name, term, label):
    assert term_label(name, term) == label


def test_terms_carry_scale_kind_and_factor(views):
    terms = views["pipelines"]["outcomes"]["product"]["models"]["controls"]["terms"]
    assert terms["breadth_international"]["scale"] == "international"
    assert terms["Intercept"]["kind"] == "intercept"
    assert terms["C(industry)[T.retail]"]["factor"] == "industry"
    assert terms["C(region)[T.Bergen]"]["factor"] == "region"
    novelty = views["pipelines"]["outcomes"]["product_novelty"]["models"]["controls"]["terms"]
    assert novelty["cut1"]["kind"] == "cut"


def test_probability_changes_become_the_primary_models_effects(views):
    study = make_study_results("pipelines")
    model = views["pipelines"]["outcomes"]["product"]["models"]["controls"]
    change = study["descriptions"]["product"]["probability_change_international"]
    assert model["marginal_effects"]["breadth_international"]["estimate"] == change["estimate"]
    assert "marginal_effects" not in views["pipelines"]["outcomes"]["product"]["models"]["breadth"]


def test_model_term_verdicts_show_odds_ratios_with_exponentiated_intervals(views):
    study = make_study_results("pipelines")
    term = study["models"]["product"]["controls"]["terms"]["breadth_international"]
    verdict = next(
        v for v in views["pipelines"]["verdicts"] if v["finding"] == "international_effect"
    )
    assert verdict["state"] == "found"
    assert verdict["evidence"]["odds_ratio"] == pytest.approx(math.exp(term["estimate"]), rel=1e-14)
    low, high = term["interval"]["segments"][0]
    assert verdict["evidence"]["interval"] == pytest.approx([math.exp(low), math.exp(high)])
    # the headline rule's bootstrap first, the firm-level term where it was not run (here)
    assert verdict["rule"]["text"] == (
        "two-sided test of international breadth in the breadth and controls model, wild "
        "bootstrap by region, else international breadth in the breadth and controls model at "
        "0.05 (used: international breadth in the breadth and controls model)"
    )
    assert verdict["inference"] == "robust"
    assert "models/{outcome}/controls/breadth_international" in verdict["rule"]["id"]


def test_opposite_worlds_give_opposite_findings_from_the_same_code(views):
    pipelines = {v["finding"]: (v["state"], s) for v, s in findings(views["pipelines"])}
    buzz = {v["finding"]: (v["state"], s) for v, s in findings(views["buzz"])}
    assert pipelines["international_effect"][0] == "found"
    assert buzz["international_effect"][0] == "not_found"
    assert pipelines["regional_effect"][0] == "not_found"
    assert buzz["regional_effect"][0] == "found"
    assert pipelines["pipelines_stronger"][1].startswith("Global pipelines are stronger")
    assert buzz["pipelines_stronger"][1].startswith("Local buzz is stronger")
    assert pipelines["spillover"][0] == "not_found" and buzz["spillover"][0] == "found"
    assert buzz["complementarity"][1].startswith("Local and global collaboration are not shown")
    # no verdict on city-region size (five regions cannot support one); every rule assessed
    assert "heterogeneity_region_size" not in pipelines
    not_assessed = [finding for finding, (state, _) in pipelines.items() if state == "not_assessed"]
    assert not_assessed == []


def test_findings_do_not_depend_on_the_survey_name():
    results = make_study_results("buzz")
    renamed = make_study_results("buzz")
    renamed["meta"]["source"]["name"] = "norway2010"
    renamed["meta"]["title"] = "norway2010"
    first = [sentence for _, sentence in findings(report_view(results))]
    assert [sentence for _, sentence in findings(report_view(renamed))] == first


def test_two_ray_fieller_sets_print_as_a_union_without_a_point_estimate(views):
    tables = {table.id: table for table in all_tables(views["pipelines"])}
    ratio = next(
        row for row in tables["table-descriptions"].rows if row.label.startswith("Ratio of coef")
    )
    # the ratio's estimate (7.667) is not printed: its set is unbounded both ways
    assert ratio.cells[3].text == "not bounded: [\u2212\u221e, -58.800] \u222a [1.420, \u221e]"
    assert ratio.cells[2].text == "\u2013"  # described, not tested: no p-value


def test_descriptives_and_regimes_come_from_the_data_layers_table(views):
    view = views["pipelines"]
    assert view["descriptives"]["columns"] == ["All firms", *REGIONS]
    employees = next(
        row for row in view["descriptives"]["rows"] if row["label"] == "employees (mean number)"
    )
    assert employees["values"][-1] is None  # NaN in the table, null in JSON, a dash when printed
    groups = {record["group"]: record["shares"] for record in view["regimes"]}
    assert list(groups) == ["All firms", *REGIONS]
    assert groups["Bergen"]["both"] == pytest.approx(0.64)
    table = next(t for t in all_tables(view) if t.id == "table-descriptives")
    row = next(r for r in table.rows if r.label == "employees (mean number)")
    assert [cell.text for cell in row.cells][-1] == "\u2013"
    labels = [r.label for r in table.rows]
    assert not [label for label in labels if "_" in label]  # words, not column names


def test_counterfactual_cells_split_into_regions_and_the_total(views):
    programme = views["pipelines"]["counterfactuals"][0]
    assert [row["region"] for row in programme["regions"]] == list(REGIONS)
    assert programme["overall"]["region"] == "All regions"
    assert programme["overall"]["extra_innovators"]["estimate"] == pytest.approx(5.0)
    assert programme["label"] == "Pipeline (100 in total, random firms)"
    assert "199 replicates" in programme["interval_method"]


def test_inference_words_come_from_the_inference_records():
    robust = Inference("robust")
    assert inference_text(robust) == "firm-level robust standard errors (Stata vce(robust))"
    assert inference_text(robust.derived("fieller")).endswith("(Stata vce(robust)), Fieller")
    clustered = Inference("cluster", by="region", clusters=5)
    assert inference_text(clustered).startswith("region-clustered standard errors")
    wild = Inference("wild_score_bootstrap", by="region", weights="webb", draws=9999)
    assert inference_text(wild) == "wild cluster score bootstrap over regions (Webb weights)"
    assert inference_text(Inference("wild_score_bootstrap", by="region")) == (
        "wild cluster score bootstrap over regions"
    )
    cells = Inference("wild_score_bootstrap", by="region_industry_cell", weights="rademacher")
    assert inference_text(cells) == (
        "wild cluster score bootstrap over region \u00d7 industry cells (Rademacher weights)"
    )
    assert inference_text(Inference("cluster", by="region_industry_cell")) == (
        "standard errors clustered by region \u00d7 industry cell (Stata vce(cluster))"
    )


def test_describe_record_reads_the_data_layers_table_of_a_real_survey():
    from buzzpipe.survey import Survey
    from buzzpipe.synth.generate import generate
    from buzzpipe.synth.preset import load_preset

    preset = load_preset("norway2010")
    firms, links = generate(preset, 3, firms=300)
    firms = firms.drop(columns=[c for c in firms if c.startswith("collab_")])
    survey = Survey.from_frame(firms, links, home_country=preset["survey.country"])
    table = survey.describe()
    record = encode(Descriptives.from_table(table))
    assert record["columns"] == list(table.columns)
    assert len(record["rows"]) == len(table)
    assert any(row["section"] == "regime" for row in record["rows"])
    results = make_study_results()
    results["descriptives"] = record
    validate_results(results)
    view = report_view(results)
    validate_view(view)
    shares = view["regimes"][0]["shares"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert encode(Descriptives.from_table(describe_frame()))["rows"][-1]["values"][-1] is None


def test_union_intervals_of_the_bootstrap_go_to_the_odds_ratio_scale_segment_by_segment(views):
    tables = {table.id: table for table in all_tables(views["pipelines"])}
    table = tables["table-product-controls-sensitivity"]
    # the column is named by its kind and clusters; the weights are in the test's own notes
    assert "wild cluster score bootstrap over regions" in table.header[4]
    row = next(r for r in table.rows if r.label == "Breadth, regional")
    low, high = math.exp(-0.5), math.exp(0.1)
    assert row.cells[3].text.endswith(f"[0.000, {low:.3f}] \u222a [{high:.3f}, \u221e]")
    other = next(r for r in table.rows if r.label == "Breadth, national")
    assert other.cells[3].text == "\u2013"  # the bootstrap was not run for this term


def test_each_scale_alone_joins_the_main_table_as_its_first_columns():
    from buzzpipe.results import Estimate, Interval

    results = make_study_results()
    models = results["models"]["product"]
    alone = {}
    for scale in ("regional", "national", "international"):
        model = dict(models["breadth"], model=f"{scale}_alone")
        estimate = Estimate(
            0.1, 0.05, 0.05, Inference("robust"), interval=Interval.bounded(0.0, 0.2)
        )
        model["terms"] = {"Intercept": models["breadth"]["terms"]["Intercept"]}
        model["terms"][f"breadth_{scale}"] = encode(estimate)
        model["term_kinds"] = {
            "Intercept": {"kind": "intercept"},
            f"breadth_{scale}": {"kind": "continuous", "variable": f"breadth_{scale}"},
        }
        alone[f"{scale}_alone"] = model
    results["models"]["product"] = {**alone, **models}
    validate_results(results)
    tables = {table.id: table for table in all_tables(report_view(results))}
    assert not any(key.endswith("-alone") for key in tables)
    header = tables["table-product-main"].header
    assert header[1:4] == ("(1) Regional alone", "(2) National alone", "(3) International alone")
    assert header[4:] == ("(4) Breadth", "(5) Breadth and controls")


def test_tests_and_programmes_are_grouped_under_one_heading_row_each(views):
    view = views["pipelines"]
    tables = {table.id: table for table in all_tables(view)}
    tests = tables["table-tests"]
    headings = [row.label for row in tests.rows if row.kind == "section"]
    outcomes = {record["label"] for record in view["outcomes"].values()}
    assert headings and set(headings) <= outcomes and len(headings) == len(set(headings))
    assert all(len(row.cells) == len(tests.header) - 1 for row in tests.rows)
    programmes = tables["table-counterfactuals"]
    headings = [row.label for row in programmes.rows if row.kind == "section"]
    assert headings == [programme["label"] for programme in view["counterfactuals"]]
    regions = [row.label for row in programmes.rows if row.kind == "plain"]
    assert regions and "All regions" not in regions  # the total is a row of its own kind
    assert [row.label for row in programmes.rows if row.kind == "stat"] == ["All regions"] * len(
        headings
    )
