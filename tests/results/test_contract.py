"""The results contract: one reader, checker and writer; facts as records; format 1 converted."""

import json

import numpy as np
import pandas as pd
import pytest
from compare_golden import GOLDEN_RESULTS

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.results import (
    FORMAT_VERSION,
    Estimate,
    Inference,
    Meta,
    ModelResult,
    Note,
    StudyResults,
    read_results,
    results_from_dict,
    results_to_dict,
)
from buzzpipe.results.contract import encode
from buzzpipe.results.version_1 import inference_record, term_record
from buzzpipe.results.version_2 import convert_version_2
from buzzpipe.results.vocabulary import InferenceKind, InferenceMethod, NoteKind, TermKind


def test_inference_records_are_written_compactly_and_read_back():
    wild = Inference(InferenceKind.WILD_SCORE_BOOTSTRAP, "region", 5, "webb", 7776)
    assert encode(wild) == {
        "kind": "wild_score_bootstrap",
        "by": "region",
        "clusters": 5,
        "weights": "webb",
        "draws": 7776,
    }
    assert encode(Inference("robust").derived(InferenceMethod.DELTA_METHOD)) == {
        "kind": "robust",
        "method": "delta_method",
    }
    assert wild.short() == "wild score bootstrap by region (webb)"


def test_format_1_phrases_become_records():
    assert inference_record("cluster(region)") == {"kind": "cluster", "by": "region"}
    assert inference_record("robust, Fieller") == {"kind": "robust", "method": "fieller"}
    assert inference_record("wild score bootstrap by region_industry_cell (rademacher)") == {
        "kind": "wild_score_bootstrap",
        "by": "region_industry_cell",
        "weights": "rademacher",
    }
    assert term_record("breadth_regional:C(industry)[T.retail]") == {
        "kind": "interaction",
        "parts": [
            {"kind": "continuous", "variable": "breadth_regional"},
            {"kind": "factor_level", "variable": "industry", "level": "retail"},
        ],
    }
    assert term_record("cut2") == {"kind": "cut", "number": 2}


def test_term_kinds_come_from_the_model_specification():
    from buzzpipe.estimate import fit
    from buzzpipe.study.models import term_kinds

    rng = np.random.default_rng(3)
    n = 600
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "size": rng.uniform(1, 9, n),
            "sector": rng.choice(["a", "b", "c"], n),
            "area": rng.choice(["north", "south"], n),
        }
    )
    data["y"] = (rng.normal(size=n) + 0.5 * data["x"] > 0).astype(float)
    fitted = fit("y ~ x * C(sector) + np.log(size) + C(sector):C(area)", data, family="lpm")
    kinds = term_kinds(fitted)
    assert list(kinds) == [str(name) for name in fitted.params.index]
    assert kinds["Intercept"].kind == TermKind.INTERCEPT
    assert kinds["np.log(size)"].variable == "np.log(size)"
    level = kinds["C(sector)[T.b]"]
    assert (level.kind, level.variable, level.level) == (TermKind.FACTOR_LEVEL, "sector", "b")
    # each column's parts are the factors it names, in formulaic's column order
    assert kinds["x:C(sector)[T.c]"].parts[1].level == "c"
    full = kinds["C(sector)[a]:C(area)[T.south]"]  # sector coded in full: no main effect of area
    assert [(part.variable, part.level) for part in full.parts] == [
        ("sector", "a"),
        ("area", "south"),
    ]


def test_writing_checks_what_it_writes():
    results = StudyResults()
    with pytest.raises(InputError, match="no models"):
        results_to_dict(results)
    bad = Estimate(0.1, 0.1, 1.5, Inference("robust"))
    results.add_test("product", "x", bad)
    with pytest.raises(InputError, match=r"\$\.tests\.product\.x\.p_value"):
        results_to_dict(results)


def test_a_record_string_is_not_a_vocabulary_member():
    with pytest.raises(ValueError):
        Inference("cluster(region)")


def test_buzzpipe_report_converts_a_format_1_file(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(GOLDEN_RESULTS), "--out", str(out)]) == 0
    written = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert written["format_version"] == FORMAT_VERSION
    assert "descriptives" not in written["meta"] and written["descriptives"]["rows"]
    assert read_results(out / "results.json").models["product"]["controls"].term_kinds


def test_a_format_1_file_that_cannot_be_converted_is_one_line_exit_2(tmp_path, capsys):
    data = json.loads(GOLDEN_RESULTS.read_text(encoding="utf-8"))
    data["models"]["product"]["controls"]["inference"] = "jackknife by firm"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert "format-1" in error and "regenerate" in error and error.count("\n") == 1
    with pytest.raises(InputError, match="regenerate"):
        results_from_dict(data)
    assert not (tmp_path / "report").exists()


def test_notes_are_records_that_code_selects_by_their_fields():
    results = StudyResults(meta=Meta(seed=3, firms=400, primary_outcome="product"))
    results.note(
        NoteKind.NOT_ASSESSED,
        "product: spillover_exposure not estimated: no links",
        outcome="product",
        quantity="tests/product/spillover_exposure",
        reason="no links",
    )
    results.note(NoteKind.SKIPPED, "Skipped at the user's request: the heterogeneity models.")
    results.add_model(_model())
    data = results_to_dict(results)
    assert data["meta"]["notes"] == [
        {
            "kind": "not_assessed",
            "text": "product: spillover_exposure not estimated: no links",
            "outcome": "product",
            "quantity": "tests/product/spillover_exposure",
            "reason": "no links",
        },
        {"kind": "skipped", "text": "Skipped at the user's request: the heterogeneity models."},
    ]
    back = results_from_dict(data)
    assert [note.quantity for note in back.meta.not_assessed()] == [
        "tests/product/spillover_exposure"
    ]
    assert back.meta == results.meta
    data["meta"]["notes"][1]["kind"] = "worry"
    with pytest.raises(InputError, match=r"\$\.meta\.notes\[1\]\.kind"):
        results_from_dict(data)


def test_a_format_2_file_converts_its_notes_to_unclassified_records():
    results = StudyResults(meta=Meta(seed=3, notes=[Note(NoteKind.DATA, "x")]))
    results.add_model(_model())
    data = results_to_dict(results)
    data["format_version"] = 2
    data["meta"]["notes"] = ["product: not assessed: too few firms"]
    assert convert_version_2(data)["meta"]["notes"] == [
        {"kind": "unclassified", "text": "product: not assessed: too few firms"}
    ]
    (note,) = results_from_dict(data).meta.notes
    assert note.kind == NoteKind.UNCLASSIFIED and note.outcome is None
    data["meta"]["notes"] = [{"kind": "data"}]  # a note that is not text cannot be converted
    with pytest.raises(InputError, match="format-2.*regenerate"):
        results_from_dict(data)


def _model() -> ModelResult:
    estimate = Estimate(0.4, 0.1, 0.001, Inference("robust"))
    return ModelResult(
        "product", "controls", "product ~ x", "logit", Inference("robust"), 400, {"x": estimate}
    )
