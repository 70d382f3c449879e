"""`buzzpipe study`: results.json written atomically, verdicts printed, bad input one line."""

import json

from buzzpipe.cli import main
from buzzpipe.results import StudyResults


def test_study_command_writes_results_and_prints_verdicts(tmp_path, capsys, norway_layout_csv):
    out = tmp_path / "report" / "results.json"
    code = main(
        ["study", str(norway_layout_csv), "--mapping", "norway", "--out", str(out)]
        + ["--replications", "5", "--seed", "3"]
    )
    assert code == 0
    results = StudyResults.from_json(out.read_text())
    assert results.meta.seed == 3
    assert {"product", "process", "new_to_market", "product_novelty"} <= set(results.models)
    assert results.counterfactuals and results.counterfactuals[0].bootstrap_replications <= 5
    printed = capsys.readouterr().out
    assert "international_effect:" in printed and "complementarity:" in printed
    json.loads(out.read_text())  # strict JSON


def test_study_command_refuses_bad_input_in_one_line_without_output(
    tmp_path, capsys, norway_layout_csv
):
    broken = tmp_path / "firms.csv"
    broken.write_text("firm_id,region\n1,Oslo\n")
    out = tmp_path / "results.json"
    code = main(["study", str(broken), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "firms.csv" in error
    assert not out.exists()
    assert main(["study", str(norway_layout_csv), "--out", str(out), "--replications", "-1"]) == 2
    assert "--replications" in capsys.readouterr().err
