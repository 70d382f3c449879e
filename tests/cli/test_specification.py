"""The specification in the user's hands: ``--outcomes``, ``--controls`` and a study file
(TOML) choose what ``analyze`` and ``study`` run, the report says which specification ran, a
control the survey lacks is left out with a note, and a specification that cannot be read is
one line (exit 2, nothing written)."""

import json

import pytest

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.study.specification import (
    Specification,
    parse_controls,
    parse_outcomes,
    read_study_file,
    resolve_controls,
    term_columns,
)
from buzzpipe.study.verdicts import VERDICT_RULES, verdict_rules

FAST = ["--no-sensitivity", "--no-heterogeneity", "--no-counterfactuals", "--progress", "never"]
CONTROLS = "np.log(employees) + industry"


@pytest.fixture(scope="module")
def survey_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("specification") / "survey.csv"
    assert main(["synth", "--preset", "norway2010", "--seed", "3", "--firms", "600"]
                + ["--out", str(path)]) == 0  # fmt: skip
    return path


@pytest.fixture(scope="module")
def analyzed(survey_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("analyzed") / "report"
    arguments = ["analyze", str(survey_csv), "--out", str(out), "--replications", "1"]
    assert main([*arguments, "--controls", CONTROLS, "--outcomes", "product,process", *FAST]) == 0
    return out


def test_analyze_runs_the_users_specification_and_says_so(analyzed):
    results = json.loads((analyzed / "results.json").read_text(encoding="utf-8"))
    assert list(results["models"]) == ["product", "process"]
    for outcome in ("product", "process"):
        formula = results["models"][outcome]["controls"]["formula"]
        assert formula.endswith("breadth_international + np.log(employees) + C(industry)")
        assert "C(region)" not in formula and "foreign_share" not in formula
    specification = results["meta"]["specification"]
    assert specification["chosen_by"] == "user"
    assert specification["controls"] == ["np.log(employees)", "C(industry)"]
    said = "Specification (the user's): outcomes product, process; controls np.log(employees) + "
    page = (analyzed / "report.html").read_text(encoding="utf-8")
    assert said.replace("'", "&#x27;") in page
    table = (analyzed / "tables" / "table-product-main.csv").read_text(encoding="utf-8")
    assert said in table  # the models tables' notes name it too


def test_a_study_file_chooses_outcomes_controls_and_fixed_effects(survey_csv, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(
        'outcomes = ["process"]\ncontrols = "np.log(employees) + no_such_column"\n'
        'fixed_effects = ["region"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "results.json"
    arguments = ["study", str(survey_csv), "--out", str(out), "--study-file", str(study)]
    assert main([*arguments, "--replications", "1"]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert list(results["models"]) == ["process"]
    formula = results["models"]["process"]["controls"]["formula"]
    assert formula.endswith("+ np.log(employees) + C(region)")
    notes = {note["text"]: note["kind"] for note in results["meta"]["notes"]}
    left_out = "Control no_such_column left out: the survey has no column no_such_column."
    assert notes[left_out] == "data"
    assert results["meta"]["specification"]["requested"]["fixed_effects"] == ["region"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--controls", "np.log(employees"], "unbalanced parentheses in --controls"),
        (["--controls", "employees + + industry"], "an empty term in --controls"),
        (["--controls", "employees > 3"], "a control term that cannot be read"),
        (["--controls", "nothing + nowhere"], "none of the controls is in the survey"),
        (["--outcomes", "product,inovation"], "unknown outcome (got 'inovation')"),
    ],
)
def test_bad_specifications_are_one_line(survey_csv, tmp_path, capsys, arguments, message):
    out = tmp_path / "report"
    assert main(["analyze", str(survey_csv), "--out", str(out), *arguments, *FAST]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not out.exists()


def test_a_study_file_with_an_unknown_key_is_one_line(tmp_path):
    study = tmp_path / "study.toml"
    study.write_text('control = "employees"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown key in the study file.*expected outcomes"):
        read_study_file(study)


def test_terms_and_their_columns():
    assert parse_controls(CONTROLS) == ("np.log(employees)", "industry")
    assert term_columns("np.log(employees)") == ["employees"]
    assert term_columns("foreign_share:firm_age") == ["foreign_share", "firm_age"]
    assert term_columns("I(openness**2)") == ["openness"]
    assert parse_outcomes("product, process,product") == ("product", "process")


def test_a_text_column_is_a_factor_and_the_default_is_the_published_study(synthetic_frame):
    frame = synthetic_frame(firms=200)
    default = (["np.log(employees)", "C(region)"], ["employees", "region"])
    assert resolve_controls(frame, Specification(), default) == (*default, [])
    terms, columns, notes = resolve_controls(
        frame, Specification(controls=("industry", "foreign_share")), default
    )
    assert terms == ["C(industry)", "foreign_share"] and notes == []
    assert columns == ["industry", "foreign_share"]


def test_a_study_file_chooses_the_engine_and_the_command_line_overrides_it(tmp_path):
    from buzzpipe.cli import _engine, build_parser

    study = tmp_path / "study.toml"
    study.write_text('engine = "dask"\nscheduler = "tcp://h:8786"\n', encoding="utf-8")
    parser = build_parser()

    def chosen(*arguments):
        return _engine(parser.parse_args(["study", "survey.csv", "--out", "r.json", *arguments]))

    assert chosen() == {"engine": "memory", "scheduler": None}
    assert chosen("--study-file", str(study)) == {"engine": "dask", "scheduler": "tcp://h:8786"}
    assert chosen("--study-file", str(study), "--engine", "stream")["engine"] == "stream"
    study.write_text('engine = "spark"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown engine in the study file.*memory"):
        chosen("--study-file", str(study))


def test_the_study_files_engine_runs_the_study(tmp_path, capsys, survey_csv):
    study = tmp_path / "study.toml"
    study.write_text('engine = "dask"\n', encoding="utf-8")
    out = tmp_path / "results.json"
    code = main(["study", str(survey_csv), "--out", str(out), "--study-file", str(study)])
    assert code == 2  # the firm bootstrap runs in memory only: refused before any work
    assert "--engine dask" in capsys.readouterr().err and not out.exists()


def _study_file(tmp_path, text: str):
    study = tmp_path / "study.toml"
    study.write_text(text, encoding="utf-8")
    return study


def test_a_study_file_chooses_the_verdicts_outcome_inference_and_alpha(survey_csv, tmp_path):
    study = _study_file(
        tmp_path, 'primary_outcome = "process"\ninference = "cluster"\nalpha = 0.01\n'
    )
    out = tmp_path / "results.json"
    arguments = ["study", str(survey_csv), "--out", str(out), "--study-file", str(study)]
    assert main([*arguments, "--replications", "1"]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["meta"]["primary_outcome"] == "process"
    specification = results["meta"]["specification"]
    assert (specification["verdict_inference"], specification["alpha"]) == ("cluster", 0.01)
    assert specification["requested"] == {
        "primary_outcome": "process", "inference": "cluster", "alpha": 0.01}  # fmt: skip
    assert "read on region-clustered p-values where computed at 0.01" in specification["text"]
    verdicts = {verdict["finding"]: verdict for verdict in results["verdicts"]}
    assert {verdict["outcome"] for verdict in results["verdicts"]} == {"process"}
    assert all(verdict["threshold"] == 0.01 for verdict in results["verdicts"])
    international = verdicts["international_effect"]
    assert international["quantity"] == (
        "models/process/controls/sensitivity/cluster/breadth_international"
    )
    assert international["inference"]["kind"] == "cluster"
    # pipelines versus buzz reads the common-support difference (issue 16), which the study
    # computes by the delta method only: no region-clustered version, so it reads that one
    assert verdicts["pipelines_stronger"]["quantity"] == (
        "tests/process/first_partner_international_minus_regional"
    )
    # the verdict follows its adjusted p at the chosen threshold
    for verdict in results["verdicts"]:
        if verdict["p_adjusted"] is not None and verdict["p_adjusted"] >= 0.01:
            assert verdict["verdict"] == "not_found"
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report)]) == 0
    page = (report / "report.html").read_text(encoding="utf-8")
    assert "under the inference region-clustered Wald tests where the study computes" in page
    table = (report / "tables" / "table-verdicts.csv").read_text(encoding="utf-8")
    assert "The rules read region-clustered Wald tests" in table
    assert "The headline rule reads" not in table


def test_robust_verdicts_read_the_firm_level_p(survey_csv, tmp_path):
    study = _study_file(tmp_path, 'outcomes = ["product"]\ninference = "robust"\n')
    out = tmp_path / "results.json"
    arguments = ["study", str(survey_csv), "--out", str(out), "--study-file", str(study)]
    assert main([*arguments, "--replications", "1"]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    verdicts = {verdict["finding"]: verdict for verdict in results["verdicts"]}
    international = verdicts["international_effect"]
    assert international["quantity"] == "models/product/controls/breadth_international"
    assert international["inference"]["kind"] == "robust" and international["threshold"] == 0.05
    assert verdicts["complementarity"]["quantity"] == "tests/product/supermodularity"
    firm = results["models"]["product"]["controls"]["terms"]["breadth_international"]
    assert international["p_value"] == firm["p_value"]


def test_the_rule_table_under_each_inference():
    assert verdict_rules() is VERDICT_RULES
    for inference in ("robust", "cluster"):
        rules = verdict_rules(inference, 0.1)
        assert [rule.finding for rule in rules] == [rule.finding for rule in VERDICT_RULES]
        assert all(rule.threshold == 0.1 for rule in rules)
        paths = [path for rule in rules for path in rule.quantities]
        assert not any("wild" in path for path in paths), paths
    cluster = dict((rule.finding, rule.quantities) for rule in verdict_rules("cluster"))
    assert cluster["regional_effect"] == (
        "models/{outcome}/controls/sensitivity/cluster/breadth_regional",
        "models/{outcome}/controls/breadth_regional",
    )
    with pytest.raises(ValueError, match="inference must be one of"):
        verdict_rules("bootstrap")


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("alpha = 1.5", "alpha", "1.5"),
        ('alpha = "0.05"', "alpha", "'0.05'"),
        ("alpha = true", "alpha", "True"),
        ('inference = "bootstrap"', "inference", "'bootstrap'"),
        ('primary_outcome = "product_novelty"', "primary_outcome", "'product_novelty'"),
        ('primary_outcome = "sales"', "primary_outcome", "'sales'"),
        ('outcomes = ["process"]\nprimary_outcome = "product"', "primary_outcome", "'product'"),
        ("outcomes = 3", "outcomes", "3"),
        ('outcomes = ["inovation"]', "outcomes", "'inovation'"),
        ('controls = "np.log(employees"', "controls", "'np.log(employees'"),
        ("controls = 7", "controls", "7"),
        ('fixed_effects = "region"', "fixed_effects", "'region'"),
    ],
)
def test_a_bad_study_file_value_is_one_line_naming_file_key_and_value(
    survey_csv, tmp_path, capsys, text, key, value
):
    study = _study_file(tmp_path, text + "\n")
    out = tmp_path / "report"
    arguments = ["analyze", str(survey_csv), "--out", str(out), "--study-file", str(study)]
    assert main([*arguments, *FAST]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert f"{study}, key {key!r}" in error and f"(got {value})" in error, error
    assert not out.exists()
