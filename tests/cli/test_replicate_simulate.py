"""``buzzpipe replicate --simulate``: the calibrated simulation beside the study in the report."""

import json

import pytest
from references import require_browser
from report_contents import expected_report_contents, rendered_ids

from buzzpipe.cli import main
from buzzpipe.results import read_results

# a small world so that the test runs in seconds: two cities, a short run
SCENARIO = """
[run]
steps = 72
seed = 3

[cities]
big = 150
small = 40

[model]
world_size = 60
omega = 0.0
copy_share = 0.5
"""
STUDY = ["--firms", "300", "--no-sensitivity", "--no-heterogeneity", "--replications", "9",
         "--firms-treated", "20", "--targeting", "random", "--progress", "never"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulate")
    scenario = folder / "tiny.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = folder / "report"
    arguments = ["replicate", "--out", str(out), *STUDY, "--simulate", str(scenario),
                 "--simulate-replicates", "3"]  # fmt: skip
    assert main(arguments) == 0
    return out


def test_the_simulation_section_is_in_results_and_the_report(report):
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    results = read_results(report / "results.json")
    section = results.simulation
    assert section is not None and section.scenario == "tiny" and section.replicates == 3
    assert data["simulation"]["firms"] == 190
    # the calibration's targets, and the held-out moment, as numbers with their error
    names = [moment.name for moment in section.moments]
    assert "product_share" in names and "log_or_new_to_market_international" in names
    assert all(moment.simulation_error >= 0 for moment in section.moments)
    # the programmes as interventions beside the study's regression counterfactual
    by_key = {(e.programme.value, e.group): e for e in section.policy}
    assert set(by_key) == {(p, g) for p in ("pipeline", "cluster")
                           for g in ("treated", "partners", "all")}  # fmt: skip
    treated = by_key["pipeline", "treated"]
    assert treated.firms == 20 and treated.replicates == 3
    assert treated.simulated_low <= treated.simulated <= treated.simulated_high
    study = next(c for c in results.counterfactuals
                 if c.programme == "pipeline" and c.targeting == "random")  # fmt: skip
    overall = study.cell("all")
    assert treated.regression == pytest.approx(overall.extra_innovators / 20)
    assert by_key["pipeline", "partners"].regression is None  # no counterpart in a regression
    # lock-in: each city with pipelines off and on; rules: default and symmetric
    assert {(c.city, c.pipelines) for c in section.lock_in} == {
        (city, on) for city in ("big", "small") for on in (False, True)
    }
    assert [r.rules for r in section.rules] == ["default", "symmetric"]
    # the simulation's tables and figure, counted from results.json, are in the page in order
    contents = expected_report_contents(data)
    html = (report / "report.html").read_text(encoding="utf-8")
    rendered = rendered_ids(html)
    tables = ["table-simulation-calibration", "table-simulation-policy", "table-simulation-rules"]
    assert [t for t in contents.tables if "simulation" in t] == tables
    assert [t for t in rendered.tables if "simulation" in t] == tables
    assert [f for f in rendered.figures if "simulation" in f] == ["figure-simulation-lock-in"]
    for table in tables:
        assert (report / "tables" / f"{table}.csv").exists()
    assert (report / "figures" / "figure-simulation-lock-in.svg").exists()
    assert "two standard errors over the replicates" in html  # the figure says what its bars are


def test_the_simulation_section_passes_the_browser_test(report):
    from browser_view import view_page

    browser = require_browser()
    rendered = rendered_ids((report / "report.html").read_text(encoding="utf-8"))
    assert "table-simulation-policy" in rendered.tables
    view = view_page(report / "report.html", rendered.tables + rendered.figures, browser=browser)
    assert view.console_errors == [] and view.requests == [] and view.invisible() == []
    assert view.elements["figure-simulation-lock-in"]["image_decoded"]


def test_without_simulate_results_json_has_no_simulation_entry():
    """Reports without the simulation keep results.json as it was (the golden run's numbers)."""
    from buzzpipe.results import StudyResults
    from buzzpipe.results.walk import encode

    assert "simulation" not in encode(StudyResults())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--simulate", "no-such-scenario.toml"], "scenario file not found"),
        (["--simulate", "--simulate-replicates", "1"], "--simulate-replicates must be at least 2"),
    ],
)
def test_bad_simulate_options_are_one_line_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "report"
    assert main(["replicate", "--out", str(out), *STUDY, *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


POLICY_SCENARIO = """
[run]
steps = 72
seed = 5
replicates = 2

[cities]
big = 120
small = 30

[model]
world_size = 40
"""


def test_simulate_policy_writes_paired_effects_and_prints_them(tmp_path, capsys):
    scenario = tmp_path / "policy.toml"
    scenario.write_text(POLICY_SCENARIO, encoding="utf-8")
    out = tmp_path / "policy"
    arguments = ["simulate", str(scenario), "--out", str(out), "--policy", "no_pipeline",
                 "--treated", "10", "--follow", "1"]  # fmt: skip
    assert main(arguments) == 0
    import pandas as pd

    effects = pd.read_csv(out / "effects.csv")
    table = pd.read_csv(out / "policy.csv")
    assert set(effects["arm"]) == {"international", "local"}
    assert set(table["replicate"]) == {0, 1} and set(table["arm"]) == {
        "control", "international", "local"}  # fmt: skip
    treated = table[table["group"] == "treated firms"]
    assert (treated["firms"] == 10).all()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["policy"]["targeting"] == "no_pipeline"
    printed = capsys.readouterr().out
    assert "+1 international partner type, treated firms:" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--policy", "richest"], "unknown --policy targeting"),
        (["--policy", "random", "--treated", "0"], "--treated out of range"),
        (["--policy", "random", "--treated", "151"], "--treated out of range"),
        (["--policy", "random", "--burn-in", "4"], "--burn-in too short"),
        (["--policy", "random", "--follow", "0"], "--follow too short"),
        (["--policy", "random", "--replicates", "1"], "at least 2 replicates"),
        (["--policy", "no_pipeline", "--treated", "150"], "only"),
    ],
)
def test_bad_policy_values_are_one_line_and_write_nothing(tmp_path, capsys, extra, message):
    scenario = tmp_path / "policy.toml"
    scenario.write_text(POLICY_SCENARIO, encoding="utf-8")
    out = tmp_path / "policy"
    assert main(["simulate", str(scenario), "--out", str(out), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_simulate_on_a_dask_cluster_writes_the_files_of_one_process(tmp_path, dask_client):
    """``simulate --scheduler ADDRESS``: the replicates run on the cluster's workers, and the
    policy experiment's tables are those of one process, byte for byte."""
    scenario = tmp_path / "policy.toml"
    scenario.write_text(POLICY_SCENARIO, encoding="utf-8")
    tables = []
    for where in (["--processes", "1"], ["--scheduler", dask_client.scheduler.address]):
        out = tmp_path / where[0].strip("-")
        arguments = ["simulate", str(scenario), "--out", str(out), "--policy", "random",
                     "--treated", "10", "--follow", "1", *where]  # fmt: skip
        assert main(arguments) == 0
        tables.append([(out / name).read_bytes() for name in ("policy.csv", "effects.csv")])
    assert tables[0] == tables[1]
