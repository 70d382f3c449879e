"""One owner for not-assessed notes: every part of the study records what it could not produce
through ``study.skipped.record_not_assessed`` (part, model or term, the cause from the error's
kind), never by writing a ``NoteKind.NOT_ASSESSED`` note of its own (which would carry no part
and no cause, and so fall out of the report's "Not assessed" list and the verdicts' reasons)."""

import ast
from pathlib import Path

import buzzpipe

OWNER = Path("study") / "skipped.py"


def _writes_not_assessed(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "NOT_ASSESSED"
        and isinstance(node.value, ast.Name)
        and node.value.id == "NoteKind"
    )


def test_not_assessed_notes_are_written_only_by_their_owner():
    root = Path(buzzpipe.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root) == OWNER:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and any(map(_writes_not_assessed, node.args)):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"not-assessed notes written outside {OWNER}: {found}"
