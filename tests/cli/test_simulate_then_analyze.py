"""The issue's acceptance run: a simulated survey whose models cannot all be estimated is
analysed to the end, and the report names what was skipped (slow: a full simulation)."""

import json

import pytest

from buzzpipe.cli import main

# The survey's city-regions with new-to-market judged against the national best product alone
# (no margin): new-to-market innovators are then so rare that whole regions have none, and the
# new-to-market model meets separation. (The calibrated `norway` scenario is estimable:
# tests/simulate/test_simulate_outputs.py.)
UNESTIMABLE = """
[run]
steps = 240
seed = 2011
[cities]
Oslo = 874
Bergen = 285
Stavanger = 190
Trondheim = 181
Kristiansand = 74
[model]
copy_share = 0.5
new_to_market_margin = 0.0
"""


@pytest.mark.slow
def test_simulate_then_analyze_exits_zero_and_names_the_skipped_model(tmp_path):
    simulated, report = tmp_path / "D", tmp_path / "R"
    scenario = tmp_path / "unestimable.toml"
    scenario.write_text(UNESTIMABLE)
    assert main(["simulate", str(scenario), "--out", str(simulated), "--no-plots"]) == 0
    assert main(["analyze", str(simulated / "survey.csv"), "--out", str(report),
                 "--progress", "never"]) == 0  # fmt: skip
    notes = json.loads((report / "results.json").read_text())["meta"]["notes"]
    models = [n for n in notes if n["kind"] == "not_assessed" and n.get("part") == "model"]
    assert models and all(n["outcome"] and n["model"] and n["cause"] for n in models)
    assert any("model of '" in n["reason"] for n in models)  # outcome and model named
    html = (report / "report.html").read_text()
    assert 'id="not-assessed"' in html
    assert all(f"the {n['model'].replace('_', ' ')} model" in html for n in models)
