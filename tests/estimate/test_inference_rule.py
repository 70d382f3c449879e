"""The headline inference rule: the code states it as the docs do; the docs' table supports it."""

import math
import re
from pathlib import Path

from buzzpipe.estimate import study_design_monte_carlo as mc
from buzzpipe.estimate.inference_rule import HEADLINE_RULE, rule_line

DOCS = Path(__file__).parents[2] / "docs" / "few_clusters.md"


def study_design_table() -> list[dict]:
    """The rows of the study-design table in the docs, keyed by its header."""
    lines = DOCS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| process | G | true slope"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def rate(entry: str) -> tuple[float, float]:
    value, error = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", entry).groups()
    return float(value), float(error)


def size_rows(n_regions: int) -> dict[str, dict]:
    return {
        row["process"]: row
        for row in study_design_table()
        if row["G"] == str(n_regions) and row["true slope (estimand)"].startswith("0 (")
    }


def holds(row: dict, inference: str) -> bool:
    value, error = rate(row[mc.INFERENCE_NAMES[inference]])
    return value <= 0.05 + 2 * max(error, math.sqrt(0.05 * 0.95 / int(row["replications"])))


def test_docs_state_the_rule_of_the_code():
    assert rule_line() in DOCS.read_text()


def test_docs_table_has_every_cell_with_enough_replications():
    rows = study_design_table()
    assert len(rows) == 2 * 2 * len(mc.PROCESSES)
    for row in rows:
        if row["G"] == "5":
            assert int(row["replications"]) >= 2000
        assert int(row["replications"]) + int(row["left out (separated)"]) == 2000


def test_the_rule_holds_its_size_in_every_process_with_five_regions():
    rows = size_rows(5)
    assert set(rows) == {mc.PROCESS_NAMES[p] for p in mc.PROCESSES}
    assert all(holds(row, HEADLINE_RULE.inference) for row in rows.values())
    for inference in HEADLINE_RULE.never:
        assert not any(holds(row, inference) for row in rows.values())


def test_the_inference_shown_beside_it_holds_only_for_these_regions_with_independent_firms():
    rows = size_rows(5)
    valid = {name for name, row in rows.items() if holds(row, "firm_robust")}
    names = mc.PROCESS_NAMES
    assert valid == {names["a"], names["b"], names["c1"]}
    assert "these five city-regions" in HEADLINE_RULE.beside_estimand
    assert "like the five" in HEADLINE_RULE.estimand


def test_a_claim_says_in_words_when_the_inferences_disagree():
    from buzzpipe.estimate.inference_rule import read_claim

    reading = read_claim(p_rule=0.090, p_beside=0.002)
    assert not reading.found and not reading.agree
    assert reading.sentence == (
        "found for these five city-regions if firms within a region are independent "
        "(firm-level p = 0.002); not shown for city-regions like them: bootstrap p = 0.090"
    )
    assert read_claim(0.01, 0.02) == read_claim(0.01, 0.02)
    agreed = read_claim(0.01, 0.02)
    assert agreed.found and agreed.agree and agreed.sentence == ""
    other_way = read_claim(0.04, 0.2)
    assert other_way.found and "bootstrap p = 0.040" in other_way.sentence
    assert not read_claim(0.3, 0.5).found


def test_the_figures_quoted_elsewhere_are_the_docs_table():
    """Notes and the report quote the study-design rates from one place
    (``STUDY_DESIGN_RATES``); they are the lowest and highest rate over the five processes of
    the docs' table."""
    from buzzpipe.estimate.inference_rule import STUDY_DESIGN_RATES, why_bootstrap

    rows = study_design_table()
    for (inference, regions, kind), (low, high) in STUDY_DESIGN_RATES.items():
        chosen = [
            row
            for row in rows
            if row["G"] == str(regions)
            and row["true slope (estimand)"].startswith("0 (") == (kind == "size")
        ]
        values = [rate(row[mc.INFERENCE_NAMES[inference]])[0] for row in chosen]
        assert len(values) == len(mc.PROCESSES)
        assert (min(values), max(values)) == (low, high), (inference, regions, kind)
    assert "12.8% to 21.2%" in why_bootstrap(5)


def test_the_recovery_figures_the_report_quotes_are_the_docs_table():
    """``RECOVERY_NORWAY2010`` (quoted by the report where a norway2010 verdict misses a true
    effect) is the docs' recovery table: k/n for the rule and for the unadjusted p."""
    from buzzpipe.estimate.inference_rule import (
        RECOVERY_NORWAY2010,
        RECOVERY_SEEDS,
        recovery_words,
    )

    text = DOCS.read_text()
    assert RECOVERY_SEEDS >= 300
    for finding, (adjusted, raw) in RECOVERY_NORWAY2010.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {finding} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2].startswith(f"{adjusted}/{RECOVERY_SEEDS} ")
        assert cells[4].startswith(f"{raw}/{RECOVERY_SEEDS} ")
        assert f"{adjusted} of {RECOVERY_SEEDS} seeds" in recovery_words(finding)
    assert recovery_words("regional_effect") == ""
    assert recovery_words("international_effect", "no-such-preset") == ""


def _world_rows(text: str, world: str, seeds: int) -> dict[str, list[str]]:
    """The rows of the docs' table of one world (after its 'World <name>: <n> seeds' line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"World {world}: {seeds} "))
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("World ") or (rows and not line.startswith("|")):
            break
        if line.startswith("| ") and not line.startswith("| finding"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def test_the_recovery_in_the_other_worlds_and_the_null_rate_are_the_docs_tables():
    """``RECOVERY_WORLDS`` (quoted by the report where a buzz or complement verdict misses a true
    effect) and ``FAMILY_WISE_NULL`` are the docs' tables of bench/recovery_worlds.py."""
    from buzzpipe.estimate.inference_rule import (
        FAMILY_WISE_NULL,
        RECOVERY_WORLDS,
        recovery_words,
    )

    text = DOCS.read_text()
    assert set(RECOVERY_WORLDS) == {"buzz", "complement"}
    for world, (seeds, counts) in RECOVERY_WORLDS.items():
        rows = _world_rows(text, world, seeds)
        assert counts
        for finding, (adjusted, raw) in counts.items():
            assert rows[finding][1] != "not found"  # only true findings are quoted
            assert rows[finding][2].startswith(f"{adjusted}/{seeds} ")
            assert rows[finding][4].startswith(f"{raw}/{seeds} ")
            assert f"{adjusted} of {seeds} seeds" in recovery_words(finding, world)
    seeds, adjusted, raw = FAMILY_WISE_NULL
    assert len(_world_rows(text, "null", seeds)) == 8  # the primary family, every finding null
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("Family-wise rate of false findings over the 8 true-null findings")
    )
    assert f": {adjusted}/{seeds} = " in line and f"(the rule); {raw}/{seeds} = " in line


def test_a_rule_measured_after_the_recovery_runs_quotes_its_own_measurement():
    """The pipelines-versus-buzz rule changed after the recovery runs (issue 16): the report
    quotes the rule's measured power from docs/synthetic_surveys.md's table, not the recovery
    rows scored under the rule before."""
    from buzzpipe.estimate.inference_rule import (
        RECOVERY_NORWAY2010,
        RECOVERY_WORLDS,
        RULE_POWER,
        recovery_words,
    )

    text = (DOCS.parent / "synthetic_surveys.md").read_text()
    start = text.index("`bench/pipelines_rule_bootstrap.py` measures the rule")
    rows = [line for line in text[start:].splitlines() if line.startswith("| ")]
    for finding, presets in RULE_POWER.items():
        assert finding not in RECOVERY_NORWAY2010
        assert all(finding not in counts for _, counts in RECOVERY_WORLDS.values())
        for preset, (found, seeds) in presets.items():
            row = next(line for line in rows if line.startswith(f"| {preset} "))
            cells = [cell.strip() for cell in row.strip("|").split("|")]
            assert cells[1] == f"{seeds:,}"
            assert cells[2].startswith(f"{found / seeds:.3f} ")
            assert f"{found} of {seeds:,} seeds" in recovery_words(finding, preset)
    assert recovery_words("pipelines_stronger", "complement") == ""
