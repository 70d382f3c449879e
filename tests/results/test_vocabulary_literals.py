"""The vocabularies of results.json are enumerations defined only in ``buzzpipe.results``.

This walks the syntax trees of ``study/`` and ``report/`` and fails on a string literal equal
to a vocabulary member's value where it is used as that vocabulary: compared with, assigned
to, passed as or stored under a name the vocabulary is known by (``verdict == "found"``,
``alternative="greater"``, ``{"family": "logit"}``, ``record.get("alternative", "two-sided")``,
a parameter default), or a literal tuple, list or set of two or more members of one vocabulary
(a copy of it). Write the member (``VerdictState.FOUND``) instead.
"""

import ast
from pathlib import Path

import pytest

import buzzpipe
from buzzpipe.results import vocabulary as v

# the names each vocabulary is known by in code: fields, keys, parameters, variables
CONTEXTS: dict[type, set[str]] = {
    v.VerdictState: {"verdict", "state", "result", "outcome_state"},
    v.Decision: {"decision"},
    v.Alternative: {"alternative"},
    v.Measure: {"measure"},
    v.Finding: {"finding"},
    v.ModelName: {"model", "primary_model"},
    v.Family: {"family"},
    v.InferenceKind: {"kind", "inference", "vcov", "vcov_type"},
    v.InferenceMethod: {"method"},
    v.WildWeights: {"weights", "weight_type"},
    v.TermKind: {"kind"},
    v.Programme: {"programme"},
    v.Targeting: {"targeting"},
    v.Allocation: {"allocation"},
    v.NotAssessedReason: {"reason"},
    v.StudyPart: {"part"},
}
STAGES = ("study", "report")


def _name(node: ast.AST) -> str | None:
    """The name an expression is known by: a variable, an attribute, a string subscript, the
    key of a ``.get("key")``."""
    if isinstance(node, ast.Name):
        return node.id.lower()
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value).lower()
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value).lower()
    return None


def _strings(node: ast.AST) -> list[ast.Constant]:
    """The string literals an expression is, or holds as a tuple, list or set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _vocabularies(value: str, name: str | None) -> list[type]:
    return [
        vocabulary
        for vocabulary, names in CONTEXTS.items()
        if value in {member.value for member in vocabulary} and (name is None or name in names)
    ]


def violations(source: str) -> list[tuple[int, str, str]]:
    """(line, literal, vocabulary) for each literal used as a vocabulary in the source."""
    found = []

    def flag(literal: ast.Constant, name: str | None) -> None:
        if name is None:
            return
        for vocabulary in _vocabularies(literal.value, name):
            found.append((literal.lineno, literal.value, vocabulary.__name__))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = [_name(side) for side in sides]
            for side in sides:
                for literal in _strings(side):
                    for name in names:
                        flag(literal, name)
        elif isinstance(node, ast.keyword):
            for literal in _strings(node.value):
                flag(literal, node.arg and node.arg.lower())
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    for literal in _strings(value):
                        flag(literal, key.value.lower())
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for literal in _strings(node.value) if node.value else []:
                    flag(literal, _name(target))
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            defaulted = positional[len(positional) - len(node.defaults) :]
            pairs = list(zip(defaulted, node.defaults, strict=True))
            pairs += [
                (a, d)
                for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)
                if d is not None
            ]
            for argument, default in pairs:
                for literal in _strings(default):
                    flag(literal, argument.arg.lower())
        elif isinstance(node, ast.Call) and _name(node) is not None and len(node.args) > 1:
            for literal in _strings(node.args[1]):  # record.get("alternative", "two-sided")
                flag(literal, _name(node))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            literals = _strings(node)
            if len(literals) >= 2 and len(literals) == len(node.elts):
                values = {literal.value for literal in literals}
                for vocabulary in CONTEXTS:
                    if values <= {member.value for member in vocabulary}:
                        found.append((node.lineno, ", ".join(sorted(values)), vocabulary.__name__))
    return found


def _files():
    root = Path(buzzpipe.__file__).parent
    return [path for stage in STAGES for path in sorted((root / stage).glob("*.py"))]


@pytest.mark.parametrize("path", _files(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_literal_stands_for_a_vocabulary_member(path):
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        'if verdict == "found": pass',
        'state = "not_assessed"',
        'x = record["alternative"] != "two-sided"',
        'f(alternative="greater")',
        'view = {"family": "logit"}',
        'p = record.get("alternative", "two-sided")',
        'def decide(estimate, decision="joint"): pass',
        'FAMILIES = ("logit", "probit")',
        'if record.allocation == "total": pass',
        'ok = term.kind in ("intercept", "cut")',
    ],
)
def test_the_walk_catches_each_way_a_literal_can_stand_for_a_member(source):
    assert violations(source) != []


def test_the_walk_leaves_other_strings_alone():
    source = "\n".join(
        [
            'label = "found in the survey"',
            'kind = "ame"',
            'name = "controls"',
            'words = {"robust": "firm-level"}',
            'scales = ("regional", "national")',
        ]
    )
    assert violations(source) == []
