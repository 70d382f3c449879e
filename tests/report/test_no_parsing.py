"""No report code parses a string the study wrote: facts travel as records.

The study writes hypotheses, notes and inference as records (``buzzpipe.results``) and the
report words them from their fields. Regular expressions are the tool that brings string
parsing back, so this walks the syntax trees of ``report/`` and allows only the patterns below,
each a typographic rule applied to text the report itself has rendered (a table cell, a CSV
cell, the finished HTML page), never to a study's text to recover a fact. A new pattern fails
here until it is added with its reason; a pattern that is no longer used fails too, so the list
stays the report's list.
"""

import ast
from pathlib import Path

import buzzpipe

REPORT = Path(buzzpipe.__file__).parent / "report"
# (module, pattern) -> why it is not parsing a study's text
ALLOWED = {
    ("formatting.py", r"(?<=\d),(?=\d{3}(?!\d))"): "CSV cells the report formatted: the "
    "thousands separator it wrote is taken out again",
    ("table_formats.py", r"\[[^\]]*\]|[<=] (?=[\d\u2212-])|\S+ = "): "a rendered cell: "
    "no line break inside an interval or after '= ' (typesetting)",
    ("table_formats.py", r"(?<![\w$])-(?=\d)"): "a rendered LaTeX cell: a minus sign, not a "
    "hyphen, before a digit",
    ("html_check.py", r"url\(\s*['\"]?(?!data:|#)([^'\")\s]+)"): "the finished page: no "
    "external resource in its CSS",
    ("table_formats.py", r"^\((\d+)\) (.+)$"): "the report's own numbered model header "
    "('(1) label', written by report/tables.py) shortened to '(1)' with a key when a LaTeX "
    "table is too wide (typesetting; a Table record carrying column numbers would remove it)",
    ("table_formats.py", r"[\s_]+"): "a rendered cell: the places a LaTeX line may break "
    "(spaces and underscores), to size wrapped columns (typesetting)",
    ("html_check.py", r"@import"): "the finished page: no CSS import",
    (
        "html_check.py",
        r"(?:href|src)\s*=\s*['\"](?!data:|#)([^'\"]+)['\"]|url\(\s*['\"]?(?!data:|#)([^'\")\s]+)",
    ): "the finished page: no external link in an embedded SVG",
}
REGEX_MODULES = {"re", "regex"}


def regex_uses(source: str, module: str) -> list[tuple[str, str]]:
    """Every regular expression a module's source uses, as (module, pattern); a pattern that
    is not a string literal, or a regex module imported under another name or its functions
    imported, is returned with the pattern '<not a literal>'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in REGEX_MODULES:
            found.append((module, "<not a literal>"))
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in REGEX_MODULES and alias.asname not in (None, alias.name):
                    found.append((module, "<not a literal>"))
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in REGEX_MODULES
            and node.func.attr not in ("escape", "IGNORECASE", "I")
        ):
            continue
        pattern = node.args[0] if node.args else None
        if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
            found.append((module, pattern.value))
        else:
            found.append((module, "<not a literal>"))
    return found


def _report_regexes() -> list[tuple[str, str]]:
    found = []
    for path in sorted(REPORT.glob("*.py")):
        found += regex_uses(path.read_text(encoding="utf-8"), path.name)
    return found


def test_the_report_uses_only_typographic_regular_expressions():
    found = _report_regexes()
    unexplained = [use for use in found if use not in ALLOWED]
    assert not unexplained, f"regular expressions in report/ not in ALLOWED: {unexplained}"
    assert set(found) == set(ALLOWED), f"ALLOWED lists unused patterns: {set(ALLOWED) - set(found)}"


def test_the_modules_that_read_records_use_no_regular_expression():
    """The view, its words and the tables read the study's records: no pattern at all."""
    for name in ("view.py", "wording.py", "tables.py", "findings.py", "tidy.py", "figures.py"):
        assert regex_uses((REPORT / name).read_text(encoding="utf-8"), name) == []


def test_the_walk_finds_a_pattern_that_parses_a_study_string():
    """The check can fail: the parsing this issue removed is caught, as are disguises."""
    removed = (
        "import re\n"
        "_DIFFERENCE = re.compile(r'^breadth_(?P<first>[a-z]+) - breadth_(?P<second>[a-z]+)')\n"
        "def words(text):\n"
        "    return re.sub(r'\\bx C\\(industry\\)', 'x sector', text)\n"
    )
    assert [pattern for _, pattern in regex_uses(removed, "wording.py")] == [
        "^breadth_(?P<first>[a-z]+) - breadth_(?P<second>[a-z]+)",
        "\\bx C\\(industry\\)",
    ]
    disguised = "from re import match\nimport re as r\ndef f(p, t):\n    return re.match(p, t)\n"
    assert regex_uses(disguised, "view.py") == [("view.py", "<not a literal>")] * 3
