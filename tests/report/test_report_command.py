"""``buzzpipe report RESULTS.json --out DIR``: the whole report re-rendered from a saved
``results.json`` alone, byte for byte what ``replicate`` wrote; bad files are one line, exit 2."""

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
