"""The simple-formula parser gives formulaic's own parse (sides, terms, factors, order) on the
formulas it reads, and leaves every other formula to formulaic."""

import random

import pytest
from formulaic import Formula

from buzzpipe.estimate import chunks
from buzzpipe.estimate.simple_formula import parse

ATOMS = ["a", "b", "c", "C(g)", "np.log(e)", "log(e)", "`my a`", "exp(a)", "sqrt(e)", "x_1", "1"]


def described(formula) -> dict:
    sides = {
        side: [
            (
                repr(term),
                [
                    (f.expr, f.eval_method, f.kind, f.metadata, str(f.token), f.token.kind)
                    for f in term.factors
                ],
            )
            for term in getattr(formula, side)
        ]
        for side in ("lhs", "rhs")
    }
    types = (type(formula), type(formula.lhs), type(formula.rhs))
    return {**sides, "types": types, "ordering": (formula.lhs.ordering, formula.rhs.ordering)}


def random_right_side(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.35:
        return rng.choice(ATOMS)
    operator = rng.choice(["+", "+", ":", "*"])
    left, right = random_right_side(rng, depth + 1), random_right_side(rng, depth + 1)
    text = f"{left} {operator} {right}" if rng.random() < 0.7 else f"{left}{operator}{right}"
    return f"({text})" if rng.random() < 0.4 else text


STUDY = [
    "product ~ breadth_regional + breadth_national + breadth_international + np.log(employees)"
    " + foreign_share + C(industry) + C(region) + openness",
    "product ~ breadth_regional * breadth_international + breadth_national + np.log(employees)"
    " + foreign_share + C(industry) + C(region) + openness",
    "product ~ (breadth_regional + breadth_national + breadth_international):C(region)"
    " + np.log(employees) + foreign_share + C(industry) + C(region) + openness",
    "product ~ (breadth_regional + breadth_national + breadth_international) * C(industry)"
    " + np.log(employees) + foreign_share + C(industry) + C(region) + openness",
]
EDGES = [
    "y ~ a",
    "y~a",
    "y ~ 1 + a",
    "y ~ a + 1",
    "y ~ (a*b)*c",
    "y ~ a*(b*c)",
    "y ~ a:b:c",
    "y ~ a:a",
    "y ~ a * b + b:a",
    "y ~ a:(b+c)*C(g)",
    "y ~ np.log(e):C(g)*a",
    "`my y` ~ a + `my a`",
]
REFUSED = [
    "y ~ a*b*c",  # formulaic reads a chain of '*' as one n-ary product
    "y ~ a + b*c*C(g)",
    "y ~ 1:a",
    "y ~ (1 + a):b",
    "y ~ 0 + a",
    "y ~ a - 1",
    "y ~ C( g)",
    "y ~ C(g, contr.sum)",
    "y ~ a.b",
    "y ~ a ** 2",
    "y ~ a | b",
    "y + z ~ a",
    "y ~ center(a)",
    "y ~ I(a * 2)",
    "y ~",
    "~ a",
    "y ~ a +",
    "y ~ (a",
    "y ~ a)",
    "y ~ a ~ b",
]


def test_random_and_study_formulas_parse_as_formulaic_parses_them():
    rng = random.Random(2026)
    formulas = STUDY + EDGES + [f"y ~ {random_right_side(rng)}" for _ in range(1500)]
    read = 0
    for formula in formulas:
        parsed = parse(formula)
        if parsed is None:
            assert formula not in STUDY + EDGES, formula
            continue
        read += 1
        expected = Formula(formula)
        assert described(parsed) == described(expected), formula
        assert parsed == expected and str(parsed) == str(expected), formula
    assert read > 1000


@pytest.mark.parametrize("formula", REFUSED)
def test_other_formulas_are_left_to_formulaic(formula):
    assert parse(formula) is None


def test_the_kept_parse_is_formulaics_for_refused_formulas():
    chunks._parse.cache_clear()
    assert described(chunks._parse("y ~ a*b*c")) == described(Formula("y ~ a*b*c"))
    assert described(chunks._parse("y ~ 0 + a")) == described(Formula("y ~ 0 + a"))


def test_formulas_of_one_right_hand_side_share_its_terms_and_parse_as_formulaic():
    """The right-hand side's terms are kept per right-hand side: each outcome's formula still
    parses as formulaic parses it, and a refused right-hand side stays refused."""
    right = "breadth_regional * breadth_international + np.log(employees) + C(region)"
    parsed = [parse(f"{outcome} ~ {right}") for outcome in ("product", "process", "product")]
    for outcome, found in zip(("product", "process", "product"), parsed, strict=True):
        expected = Formula(f"{outcome} ~ {right}")
        assert described(found) == described(expected)
        assert found == expected and str(found) == str(expected)
    assert all(a is b for a, b in zip(parsed[0].rhs, parsed[1].rhs, strict=True))
    assert parse("y ~ a*b*c") is None and parse("z ~ a*b*c") is None
