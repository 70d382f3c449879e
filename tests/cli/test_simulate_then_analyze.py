"""The issue's acceptance run: a simulated survey whose models cannot all be estimated is
analysed to the end, and the report names what was skipped (slow: a full simulation)."""

import json

import pytest

from buzzpipe.cli import main


@pytest.mark.slow
def test_simulate_norway_then_analyze_exits_zero_and_names_the_skipped_model(tmp_path):
    simulated, report = tmp_path / "D", tmp_path / "R"
    assert main(["simulate", "--builtin", "norway", "--out", str(simulated), "--no-plots"]) == 0
    assert main(["analyze", str(simulated / "survey.csv"), "--out", str(report),
                 "--progress", "never"]) == 0  # fmt: skip
    notes = json.loads((report / "results.json").read_text())["meta"]["notes"]
    skipped = [note for note in notes if "cannot be estimated" in note]
    assert any("model of '" in note for note in skipped)  # outcome and model named
    html = (report / "report.html").read_text()
    assert "cannot be estimated" in html
