"""``buzzpipe report RESULTS.json --out DIR``: the whole report re-rendered from a saved
``results.json`` alone, byte for byte what ``replicate`` wrote; bad files are one line, exit 2."""

import csv
import json
import shutil

import pytest

from buzzpipe.cli import main

FAST = ["--no-sensitivity", "--no-heterogeneity", "--no-counterfactuals", "--progress", "never"]


def _tree(folder) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    """A real (small, fast) replicate run: its output folder."""
    out = tmp_path_factory.mktemp("replicate") / "report"
    assert main(["replicate", "--firms", "600", "--out", str(out), *FAST]) == 0
    return out


def test_report_from_a_saved_results_file_alone_is_byte_identical(
    replicated, tmp_path, monkeypatch, capsys
):
    # only results.json travels, to a fresh folder; the command runs from there
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    shutil.copyfile(replicated / "results.json", fresh / "saved.json")
    monkeypatch.chdir(fresh)
    capsys.readouterr()
    assert main(["report", "saved.json", "--out", "rendered"]) == 0
    assert "report: rendered/report.html" in capsys.readouterr().out
    original, rendered = _tree(replicated), _tree(fresh / "rendered")
    assert sorted(rendered) == sorted(original)
    assert any(name.endswith(".docx") for name in rendered)
    assert any(name.endswith(".png") for name in rendered)
    different = [name for name in original if rendered[name] != original[name]]
    assert different == []


def test_an_edited_number_changes_the_rendered_report(replicated, tmp_path):
    """The pair to the identity test: the report does read the file it is given."""
    results = json.loads((replicated / "results.json").read_text(encoding="utf-8"))
    term = results["models"]["product"]["controls"]["terms"]["breadth_international"]
    term["estimate"] = 1.0  # an odds ratio of exp(1) = 2.718
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(results), encoding="utf-8")
    assert main(["report", str(edited), "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "tables" / "table-product-main.csv").read_text(encoding="utf-8")
    original = (replicated / "tables" / "table-product-main.csv").read_text(encoding="utf-8")
    assert "2.718" in table and "2.718" not in original


def _no_json(path) -> None:
    path.write_text("{", encoding="utf-8")


def _negative_count(path) -> None:
    results = {"format_version": 3, "meta": {}, "verdicts": []}
    model = {"outcome": "product", "model": "controls", "formula": "product ~ x"}
    model.update(family="logit", inference={"kind": "robust"})
    results["models"] = {"product": {"controls": model}}
    results["models"]["product"]["controls"]["nobs"] = -3
    path.write_text(json.dumps(results), encoding="utf-8")


def _future_version(path) -> None:
    path.write_text(json.dumps({"format_version": 99}), encoding="utf-8")


def _binary(path) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_no_json, "not valid JSON at line 1"),
        (_negative_count, "'$.models.product.controls.nobs': negative count (got -3)"),
        (_future_version, "unsupported results format (got 99)"),
        (_binary, "not a UTF-8 text file"),
        (None, "cannot read results"),
    ],
)
def test_bad_results_files_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, damage, message):
    path = tmp_path / "results.json"
    if damage is not None:
        damage(path)
    before = path.read_bytes() if path.exists() else None
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and str(path) in error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()
    assert (path.read_bytes() if path.exists() else None) == before  # the input is untouched


def test_an_output_folder_that_is_a_file_is_refused(replicated, tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("mine", encoding="utf-8")
    assert main(["report", str(replicated / "results.json"), "--out", str(target)]) == 2
    assert "the output folder is a file" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "mine"


def test_report_statistic_and_eform_options(replicated, tmp_path):
    """``--statistic ci --no-eform``: coefficients with their intervals in brackets; ``-t``:
    b / se in parentheses; the default run keeps standard errors in parentheses."""
    results = json.loads((replicated / "results.json").read_text(encoding="utf-8"))
    term = results["models"]["product"]["controls"]["terms"]["breadth_international"]
    column = list(results["models"]["product"]).index("controls") + 1
    out = tmp_path / "ci"
    assert main(["report", str(replicated / "results.json"), "--out", str(out),
                 "--statistic", "ci", "--no-eform"]) == 0  # fmt: skip
    table = out / "tables" / "table-product-main.csv"
    rows = list(csv.reader(table.open(encoding="utf-8")))
    position = next(i for i, row in enumerate(rows) if row and row[0] == "Breadth, international")
    assert float(rows[position][column].rstrip("*")) == pytest.approx(term["estimate"], abs=5e-4)
    low, high = (float(end) for end in rows[position + 1][column].strip("[]").split(", "))
    assert (low, high) == pytest.approx(tuple(term["interval"]["segments"][0]), abs=5e-4)
    assert "not odds ratios" in table.read_text(encoding="utf-8")
    assert "95% confidence intervals" in (out / "report.html").read_text(encoding="utf-8")
    out = tmp_path / "t"
    assert main(["report", str(replicated / "results.json"), "--out", str(out),
                 "--statistic", "t"]) == 0  # fmt: skip
    rows = list(csv.reader((out / "tables" / "table-product-main.csv").open(encoding="utf-8")))
    shown = rows[position + 1][column]
    assert float(shown.strip("()")) == pytest.approx(term["estimate"] / term["std_error"], abs=5e-3)


def test_replicate_and_analyze_take_the_table_options():
    from buzzpipe.cli import build_parser

    parser = build_parser()
    for command in (["replicate"], ["analyze", "survey.csv", "--out", "x"]):
        args = parser.parse_args([*command, "--statistic", "ci", "--no-eform"])
        assert (args.statistic, args.eform) == ("ci", False)
        args = parser.parse_args(command)
        assert (args.statistic, args.eform) == ("se", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "r.json", "--out", "x", "--statistic", "z"])
