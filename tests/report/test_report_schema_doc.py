"""``docs/results_schema.md`` describes every key a real ``results.json`` holds.

The study keeps gaining entries; this walks files written by the real commands and fails on any
key (and any name of an outcome's model, term, test or description) the schema page does not
mention, so the page cannot drift from the files again. Names built from scales, partner types,
outcomes or factor levels match the page's placeholders (``international_minus_<scale>``,
``C(industry)[T.<level>]``).
"""

import itertools
import json
import re
from pathlib import Path

import pytest

from buzzpipe.cli import main
from buzzpipe.survey.schema import OUTCOMES, PARTNER_TYPES, SCALES

SCHEMA_PAGE = Path(__file__).resolve().parents[2] / "docs" / "results_schema.md"
QUICK = ["--replications", "9", "--wild-draws", "99", "--progress", "never"]
PLACEHOLDERS = (
    *((scale, "<scale>") for scale in SCALES),
    *((partner_type, "<partner_type>") for partner_type in PARTNER_TYPES),
    *((outcome, "<outcome>") for outcome in (*OUTCOMES, "product_novelty")),
)
_LEVEL = re.compile(r"\[T\.[^\]]+\]")
_FULL_LEVEL = re.compile(r"\[(?!T\.)[^\]<]+\]")  # full-rank coding: each region's own slope
_EFFECT = re.compile(r"^(?P<term>.+): (?P<change>dy/dx|\+1)(?P<k> \| outcome \d+)?$")
# a factor's level against its base (margins, dydx(*)): "region: Bergen vs Oslo | outcome 0"
_FACTOR_CHANGE = re.compile(r"^(?P<term>[^:]+): .+ vs .+?(?P<k> \| outcome \d+)?$")
# JSON paths (dots, [] for list items, * for any key) whose keys are names from the data
NAMED_KEYS = {
    "models": "outcome",
    "models.*": "model",
    "models.*.*.terms": "term",
    "models.*.*.odds_ratios": "term",
    "models.*.*.term_kinds": "term",
    "models.*.*.marginal_effects": "effect",
    "models.*.*.sensitivity": "inference",
    "models.*.*.sensitivity.*": "term",
    "tests": "section",
    "tests.*": "test",
    "descriptions": "section",
    "descriptions.*": "description",
    "verdicts_by_outcome": "outcome",
    "meta.estimation_sample": "outcome",
}
# keys whose string values are names the page must also explain
NAMED_VALUES = ("finding", "verdict", "programme", "scale", "targeting", "allocation", "family")


def documented_tokens(text: str) -> set[str]:
    """Every `code span` of the page, whole and split at dots (`meta.seed` gives meta, seed)."""
    tokens = set()
    for span in re.findall(r"`([^`]+)`", text):
        for token in (span, *span.split(".")):
            if token:
                tokens.update((token, token.removesuffix("[]")))
    return tokens


def name_forms(name: str) -> set[str]:
    """The name and every way of writing its scales, partner types and outcomes as
    placeholders; factor levels become <level>."""
    name = _LEVEL.sub("[T.<level>]", name)
    name = _FULL_LEVEL.sub("[<level>]", name)
    pieces = [name]
    for word, placeholder in PLACEHOLDERS:
        pieces = [part for piece in pieces for part in _split_keep(piece, word, placeholder)]
    choices = [piece if isinstance(piece, tuple) else (piece,) for piece in pieces]
    return {"".join(choice) for choice in itertools.product(*choices)}


def _split_keep(piece, word: str, placeholder: str) -> list:
    """Split a text piece at a word, each occurrence kept as a (word, placeholder) choice."""
    if isinstance(piece, tuple):
        return [piece]
    pattern = re.compile(rf"(?<![a-z]){re.escape(word)}(?![a-z])")
    parts: list = []
    last = 0
    for match in pattern.finditer(piece):
        parts += [piece[last : match.start()], (word, placeholder)]
        last = match.end()
    return [*parts, piece[last:]]


def undocumented(results: dict, tokens: set[str]) -> set[str]:
    """Paths of keys (and named values) of a results structure the page does not mention."""
    missing: set[str] = set()

    def known(name: str, kind: str | None = None) -> bool:
        effect = _EFFECT.match(name) if kind == "effect" else None
        if effect:  # "<term>: dy/dx", "<term>: +1 | outcome <k>"
            template = "<term>: " + effect["change"] + (" | outcome <k>" if effect["k"] else "")
            return template in tokens and known(effect["term"])
        change = _FACTOR_CHANGE.match(name) if kind == "effect" else None
        if change:  # "<factor>: <level> vs <base>", "... | outcome <k>"
            template = "<factor>: <level> vs <base>" + (" | outcome <k>" if change["k"] else "")
            return template in tokens and known(change["term"])
        parts = name.split(":")  # interactions: each factor
        return all(name_forms(part) & tokens for part in parts)

    def walk(value, path: str, pattern: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]", f"{pattern}[]")
            return
        if not isinstance(value, dict):
            return
        kind = NAMED_KEYS.get(pattern)
        for key, item in value.items():
            if not known(key, kind):
                missing.add(f"{path}.{key}" if path else key)
            if key in NAMED_VALUES and isinstance(item, str) and item and not known(item):
                missing.add(f"{path}.{key} = {item!r}")
            if kind is None:
                walk(item, f"{path}.{key}" if path else key, f"{pattern}.{key}" if pattern else key)
            else:
                walk(item, f"{path}.{key}" if path else key, f"{pattern}.*" if pattern else "*")

    walk(results, "", "")
    return missing


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> dict[str, dict]:
    """results.json from analyze on a synthetic survey written to CSV (no links: the
    leave-one-out spill-over with its naive and wild-bootstrap entries), and on the same survey
    without the regional scale (the national-scale cluster programme, national x international
    interaction)."""
    from buzzpipe.synth import synthesize

    folder = tmp_path_factory.mktemp("schema")
    firms = synthesize("norway2010", 3, firms=250).firms
    surveys = {
        "all scales": firms,
        "no regional scale": firms.drop(
            columns=[column for column in firms if column.startswith("collab_regional_")]
        ),
    }
    results = {}
    for name, frame in surveys.items():
        path = folder / f"{name.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        out = folder / f"out_{path.stem}"
        assert main(["analyze", str(path), "--out", str(out), *QUICK]) == 0
        results[name] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return results


def test_the_schema_page_mentions_every_key_of_real_results(real_results):
    tokens = documented_tokens(SCHEMA_PAGE.read_text(encoding="utf-8"))
    for name, results in real_results.items():
        assert undocumented(results, tokens) == set(), name
    # the walk reaches the entries the study gained most recently
    with_scales = real_results["all scales"]
    assert "spillover_exposure_naive" in with_scales["descriptions"]["product"]
    assert "spillover_exposure_wild_bootstrap" in with_scales["tests"]["product"]
    assert "international_minus_regional_cluster_region" in with_scales["tests"]["product"]
    assert set(with_scales["verdicts_by_outcome"]) == {"product", "process", "new_to_market"}
    without = real_results["no regional scale"]
    assert {c["scale"] for c in without["counterfactuals"]} == {"international", "national"}


def test_the_walk_finds_a_key_the_page_does_not_mention(real_results):
    """The check can fail: an invented key, term, test name or finding is caught."""
    tokens = documented_tokens(SCHEMA_PAGE.read_text(encoding="utf-8"))
    results = json.loads(json.dumps(real_results["all scales"]))
    results["meta"]["invented_entry"] = 1
    model = results["models"]["product"]["controls"]
    model["terms"]["mystery_regressor"] = model["terms"]["breadth_regional"]
    results["tests"]["product"]["secret_test"] = results["tests"]["product"]["supermodularity"]
    results["verdicts"][0]["finding"] = "unheard_of_finding"
    assert undocumented(results, tokens) == {
        "meta.invented_entry",
        "models.product.controls.terms.mystery_regressor",
        "tests.product.secret_test",
        "verdicts[].finding = 'unheard_of_finding'",
    }


def test_placeholders_cover_names_built_from_scales_and_levels():
    forms = name_forms("international_minus_regional_cluster_region")
    assert "international_minus_<scale>_cluster_region" in forms
    assert "<scale>_minus_<scale>_cluster_region" in forms
    assert "C(industry)[T.<level>]" in name_forms("C(industry)[T.retail]")
    assert "collab_<scale>_<partner_type>" in name_forms("collab_national_universities")
    assert "probability_change_<scale>" in name_forms("probability_change_regional")


@pytest.mark.slow
def test_the_schema_page_mentions_every_key_of_the_replicated_study(tmp_path):
    """The default replicate run (norway2010, full size, links-based spill-over)."""
    out = tmp_path / "norway2010"
    assert main(["replicate", "--out", str(out), "--progress", "never"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    tokens = documented_tokens(SCHEMA_PAGE.read_text(encoding="utf-8"))
    assert undocumented(results, tokens) == set()


def test_the_report_of_real_results_names_everything_in_words(real_results):
    """Every test, description, hypothesis and rule of a real run reads in words: no column
    names, formula brackets or JSON paths; the programmes say their scale."""
    from buzzpipe.report.tables import all_tables
    from buzzpipe.report.view import report_view

    raw = re.compile(r"_|b\[|\bmodels/|\btests/|\bdescriptions/")
    for name, results in real_results.items():
        view = report_view(results)
        tables = {table.id: table for table in all_tables(view)}
        assert {"table-findings-by-outcome", "table-tests-compared"} <= set(tables), name
        for table_id in ("table-tests", "table-tests-compared", "table-descriptions"):
            for row in tables[table_id].rows:
                if row.kind == "section":
                    continue
                assert not raw.search(row.label), (name, row.label)
                assert not raw.search(row.cells[0].text), (name, row.cells[0].text)
        for row in tables["table-verdicts"].rows:
            assert not raw.search(row.cells[2].text), (name, row.cells[2].text)
        scales = {programme["label"].split(" partner")[0] for programme in view["counterfactuals"]}
        local = "regional" if name == "all scales" else "national"
        assert scales == {
            "Pipeline: one more kind of international",
            f"Cluster: one more kind of {local}",
        }
