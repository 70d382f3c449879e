"""Compare a ``results.json`` (format 2) and its tables with the golden norway2010 run.

The golden files were made by ``buzzpipe replicate`` (norway2010, seed 2010) from main before
the results contract (format 1, commit 2e6e628). Every number of the golden file must be in the
new file at the same place with the same value (a format-1 path is mapped to where format 2
keeps the number), and the only numbers the new file adds are the facts format 1 never
recorded (the number of clusters and the bootstrap draws of an inference, a cut point's
number). The tables must be the golden ones: LaTeX byte for byte, CSV cell for cell (main
quotes a cell starting with a minus since commit 628160e, against spreadsheet formulas).

"The same value" is bit for bit by default. The estimation core has changed its floating-point
order since the golden run (the fused per-block kernel, commit 6d4fafe), which moves last bits
(largest relative change 9e-11, on an interval end of -4.7e-5); ``--tolerance`` (and the slow
test) compare within a relative 1e-9 and an absolute 1e-12 and count the bitwise equal ones.

As a script::

    python tests/results/compare_golden.py NEW/results.json [NEW/tables] [--tolerance] [--changed]

prints each difference and exits 1 when there is one (``--changed`` leaves out the numbers
``CHANGED_SINCE`` names).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from buzzpipe.report.formatting import plain_numbers
from buzzpipe.results.findings import RETIRED_FINDINGS

GOLDEN = Path(__file__).resolve().parent / "golden" / "norway2010"
GOLDEN_RESULTS = GOLDEN / "results_format1.json"
GOLDEN_TABLES = GOLDEN / "tables"
# numbers format 2 and 3 record and format 1 did not (format 1 wrote the firms and cells of a
# hypothesis, the restrictions of a joint one and the cap of a programme's note inside sentences)
NEW_FACTS = (
    ".clusters",
    ".draws",
    ".number",
    ".hypothesis.firms",
    ".hypothesis.cells",
    ".hypothesis.count",
    ".cap",
    ".eligible",
    ".firms_treated",
    ".regions",
    ".dropped",
    ".replicates",
)
# a verdict's multiplicity fields and the inference it read (issue 15): a converted format-1
# verdict has none of them (null)
NEW_FACTS += (".p_adjusted", ".family_size", ".inference")
_SENSITIVITY = {"cluster(region)": "cluster", "wild score bootstrap": "wild_score_bootstrap"}


def numbers(data: Any, path: str = "") -> dict[str, Any]:
    """Every number of JSON data by its path: finite numbers, "inf"/"-inf", and null."""
    found: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            found.update(numbers(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.update(numbers(value, f"{path}[{index}]"))
    elif data is None or data in ("inf", "-inf"):
        found[path] = data
    elif isinstance(data, int | float) and not isinstance(data, bool):
        found[path] = data
    return found


def format_2_path(path: str) -> str | None:
    """Where format 2 keeps a number of format 1 (None: a copy format 2 no longer keeps)."""
    if path == "format_version":
        return None  # the format itself: 1 then, 2 now
    if path.startswith("descriptives."):
        return None  # the study's second copy of the descriptive table
    if path.startswith("meta.descriptives."):
        return path.removeprefix("meta.")
    for old, new in _SENSITIVITY.items():
        path = path.replace(f".sensitivity.{old}.", f".sensitivity.{new}.")
    return path


def without_retired_verdicts(data: dict[str, Any]) -> dict[str, Any]:
    """The golden data without the verdicts of findings no rule decides any more (reading a
    results file leaves them out: ``RETIRED_FINDINGS``), so later verdicts keep their place."""
    data = dict(data)

    def kept(verdicts: list) -> list:
        return [v for v in verdicts if v.get("finding") not in RETIRED_FINDINGS]

    data["verdicts"] = kept(data.get("verdicts", []))
    data["verdicts_by_outcome"] = {
        outcome: kept(verdicts) for outcome, verdicts in data.get("verdicts_by_outcome", {}).items()
    }
    return data


def golden_numbers() -> dict[str, Any]:
    """The golden file's numbers at their format-2 paths (a retired finding's verdict is one
    that format 2 no longer keeps)."""
    golden = without_retired_verdicts(json.loads(GOLDEN_RESULTS.read_text(encoding="utf-8")))
    mapped = {}
    for path, value in numbers(golden).items():
        new_path = format_2_path(path)
        if new_path is not None:
            mapped[new_path] = value
    return mapped


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if not isinstance(a, int | float) else a == b


RELATIVE, ABSOLUTE = 1e-9, 1e-12
# numbers a later change to the study moved on purpose (JSON path pattern -> the commit and why);
# a fresh run is compared with the golden one everywhere else
CHANGED_SINCE = {
    "models.*.by_region_size.*": "3a368dd: log region size centred at its mean (main effects "
    "in a region of mean log size)",
    "tables/table-*-heterogeneity.*": "3a368dd: the same, in the heterogeneity tables",
    "descriptions.*.probability_difference_*": "1d90867: the difference of the +1-partner "
    "probability changes, a new description (added numbers)",
    "tables/table-descriptions.*": "1d90867: the same, new rows of the descriptions table; "
    "issue 15: a ratio whose Fieller set is unbounded both ways is shown as 'not bounded: "
    "<set>' without its point estimate",
    "tables/table-verdicts.*": "issue 16: complementarity labelled 'complements in the odds' "
    "(a one-sided 5% test on the log-odds scale); no city-region size row; sector named "
    "'industry (sector)'; issue 15: the inference each row read and the Holm-adjusted p",
    "tables/table-findings-by-outcome.*": "issue 16: the same labels and rows; issue 15: the "
    "Holm p",
    "tables/table-tests.*": "issue 16: the supermodularity row named 'in the odds, one-sided'; "
    "the sector test named 'by industry (sector)'; the note's selection caveat on "
    "complementarity (firms choose their regime)",
    "tests.*.supermodularity.interval.*": "issue 16: the one-sided 95% lower bound",
    "descriptions.*.interaction_probability_*": "issue 16: the Ai-Norton double difference "
    "moved to tests (a verdict row of its own)",
    "tests.*.interaction_probability_*": "issue 16: the same, now a test",
    "verdicts*": "issue 16: the complementarity_probability row (later rows move down); issue "
    "15: verdicts read the headline rule (wild cluster score bootstrap by region where computed) "
    "and a Holm-adjusted p (p_value, p_adjusted, family_size, inference); issue 16: the "
    "city-region size rule removed, so the Holm family of the primary outcome is 8 rules, not 9, "
    "and the Holm-adjusted p (and family_size) of the remaining verdicts change with it "
    "(deliberate)",
    "tests.*.supermodularity_wild_bootstrap*": "issue 15: supermodularity under the headline "
    "rule (one-sided wild score bootstrap by region), a new test",
    "tables/table-tests-compared.*": "issue 15: the same, a new row of the compared table; "
    "issue 16: spill-over rows named 'association with local pipelines', and the title and "
    "note too (the table no longer says 'the spill-over'); the note names where the column a "
    "verdict reads is said (the headline rule), not 'the primary inference'",
    "meta.synthetic*": "issue 15: the preset's truth and the calibration record beside the "
    "verdicts (synthetic banner)",
    "meta.published*": "issue 15: the published figures of the replica-and-published table",
    "tables/*.tex": "issue 17: LaTeX tables fit an article's text width (footnotesize, numbered "
    "model headers with a key in the notes, wrapped tabularx columns where needed, heading rows "
    "across the table); their numbers are the CSV tables', which are still compared",
    "tables/table-*-margins.*": "issue 17: the average-marginal-effects table per outcome, "
    "new (its numbers are the golden run's marginal_effects; the page's digest renewed)",
    "tests.*.heterogeneity_region_size.*": "issue 16: no test of city-region size (five "
    "regional slopes cannot support one); each region's slopes shown descriptively instead",
    "models.*.by_region.*": "issue 16: the same, the by_region model (added numbers)",
    "tables/table-region-slopes.*": "issue 16: the same, a table of the regional slopes",
    "models.*.marginal_effects.[!b]*": "issue 17: the average marginal effect of every "
    "regressor (Stata's margins, dydx(*)), the controls' after the breadth terms' (added "
    "numbers; the breadth terms' keys, all starting with 'breadth_', are still compared)",
    "meta.specification*": "issue 17: which specification ran, with the verdicts' alpha",
    "models.*.breadth_categories.*": "issue 16: scales on common support, the breadth "
    "categories model (added numbers)",
    "tests.*.*first_partner_*": "issue 16: the same, first kind of partner at each scale; "
    "pipelines versus buzz reads it; the region bootstrap's row of the difference the verdict "
    "reads carries the 95% set of the values its test does not reject (the test inverted)",
    "tests.*.*second_partner_*": "issue 16: the same, second kind of partner",
    "descriptions.*.*first_partner_*": "issue 16: the same, the steps at each scale",
    "descriptions.*.*second_partner_*": "issue 16: the same",
    "descriptions.*.standardised_*": "issue 16: standardised effects, a secondary description",
    "tables/table-common-support.*": "issue 16: the table of scales on common support",
    "tables/table-*-breadth-categories.*": "issue 16: the breadth categories model's table",
    "models.*.marginal_effects.*+1*": "issue 16: a +1 change holds a firm at the cap of six "
    "partner types (one definition with the counterfactuals)",
    "descriptions.*.probability_change_*": "issue 16: the same cap",
    "descriptions.*.probability_ratio_*": "issue 16: the same cap",
    "counterfactuals*": "issue 16: predicted under the primary (controls) model, the "
    "interaction model a sensitivity column (its programmes added, model recorded)",
    "tests.across_outcomes.*": "issue 16: equality of the +1-partner probability changes "
    "across outcomes (suest); the coefficients' test kept as coefficients_equal_*",
    "tests.*.spillover_placebo*": "issue 16: the spill-over association's placebo (without "
    "links the kinds of international partner clustering by cell, own pipeline status before; "
    "with links own status on partners' pipeline share beyond the region's leave-one-out "
    "share), a new test",
    "descriptions.*.spillover_confounding_bound*": "issue 16: how strong a confounder would "
    "have to be to explain the association, a new description",
    "tables/table-counterfactuals.*": "issue 16: headers say 'predicted under the model, "
    "assuming breadth is as good as random'; the interaction model's column",
}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
    return _same(a, b)


def compare_numbers(
    new: dict[str, Any],
    expected: dict[str, Any],
    *,
    tolerance: bool = False,
    changed: bool = False,
) -> list[str]:
    """Differences between the new file's numbers and the expected (golden) ones: bit for bit,
    or within :data:`RELATIVE` and :data:`ABSOLUTE` with ``tolerance``; with ``changed``, the
    numbers :data:`CHANGED_SINCE` names are left out (a fresh run after those changes)."""
    same = _close if tolerance else _same
    problems = []
    for path, value in expected.items():
        if changed and any(fnmatch.fnmatchcase(path, pattern) for pattern in CHANGED_SINCE):
            continue
        if path not in new:
            problems.append(f"missing: {path} (golden {value!r})")
        elif not same(new[path], value) or type(new[path]) is not type(value):
            problems.append(f"changed: {path}: golden {value!r}, new {new[path]!r}")
    for path in new.keys() - expected.keys():
        if changed and any(fnmatch.fnmatchcase(path, pattern) for pattern in CHANGED_SINCE):
            continue  # added on purpose since the golden run
        if path != "format_version" and not path.endswith(NEW_FACTS):
            problems.append(f"added: {path} = {new[path]!r}")
    return problems


def _csv_cells(text: str) -> list[list[str]]:
    """A CSV table's cells, with the apostrophe that CSV safety (commit 628160e, after the
    golden run) puts before a cell starting with -, +, = or @ taken off again, and the cells
    after each row's label written with an ASCII minus and no thousands separator, as the
    presentation CSVs write them since the tidy export (issue 17)."""
    rows = csv.reader(io.StringIO(text))
    unsafe = [
        [
            cell[1:] if cell[:1] == "'" and cell[1:2] in ("-", "+", "=", "@") else cell
            for cell in row
        ]
        for row in rows
    ]
    # the title (first line), header (second) and notes (one cell) keep their text
    return [
        row if index < 2 or len(row) < 2 else [row[0], *map(plain_numbers, row[1:])]
        for index, row in enumerate(unsafe)
    ]


def compare_tables(tables: Path, *, changed: bool = False) -> list[str]:
    """Golden tables that are missing or changed: LaTeX byte for byte, CSV cell for cell (the
    CSV-safety apostrophe aside); with ``changed``, the tables :data:`CHANGED_SINCE` names are
    left out."""
    problems = []
    for golden in sorted(GOLDEN_TABLES.iterdir()):
        name = f"tables/{golden.name}"
        if changed and any(fnmatch.fnmatchcase(name, pattern) for pattern in CHANGED_SINCE):
            continue
        new = tables / golden.name
        if not new.exists():
            problems.append(f"missing table: {golden.name}")
        elif golden.suffix == ".csv":
            old_text, new_text = (path.read_text(encoding="utf-8") for path in (golden, new))
            if _csv_cells(new_text) != _csv_cells(old_text):
                problems.append(f"changed table: {golden.name}")
        elif new.read_bytes() != golden.read_bytes():
            problems.append(f"changed table: {golden.name}")
    return problems


def main(argv: list[str]) -> int:
    tolerance = "--tolerance" in argv
    changed = "--changed" in argv
    argv = [argument for argument in argv if argument not in ("--tolerance", "--changed")]
    results = Path(argv[0])
    new = numbers(json.loads(results.read_text(encoding="utf-8")))
    golden = golden_numbers()
    problems = compare_numbers(new, golden, tolerance=tolerance, changed=changed)
    bitwise = len(golden) - len(compare_numbers(new, golden))
    tables = Path(argv[1]) if len(argv) > 1 else results.parent / "tables"
    problems += compare_tables(tables, changed=changed)
    for problem in problems:
        print(problem)
    within = f" within rel {RELATIVE:g}, abs {ABSOLUTE:g}" if tolerance else " bit for bit"
    print(
        f"{len(golden)} golden numbers compared{within}: {len(problems)} differences; "
        f"{bitwise} bit for bit; tables compared: {len(list(GOLDEN_TABLES.iterdir()))}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
