"""formulaic's parse of a simple formula, written without its tokenizer (about 1 ms a formula).

The study's formulas are ``outcome ~ terms`` with ``+``, ``:``, ``*`` and parentheses over
plain or back-quoted column names, ``C(column)``, ``log``/``exp``/``sqrt`` (or ``np.``) of a
column and the literal ``1``. For those, :func:`parse` gives the ``Formula`` formulaic's parser
gives: the same sides, terms, factors (expression, evaluation method) and order, by its rules:

- the right-hand side starts with the intercept ``1``;
- ``a + b`` joins the terms of both sides (first occurrence kept), ``a:b`` takes the products
  of each left term with each right one (left first), ``a*b`` is ``a + b + a:b``;
  ``:`` binds tighter than ``*``, which binds tighter than ``+``;
- a product's factors keep their order, repeats dropped; terms are then ordered by degree
  (stable).

Anything else (``-``, ``0``, ``**``, ``|``, ``.``, other calls, chained ``*``, unusual spacing
inside a call) gives ``None``: formulaic's parser reads it. Tests compare both parsers on many
formulas.
"""

from __future__ import annotations

import functools
import re

from formulaic.formula import Formula, SimpleFormula
from formulaic.parser.types import Term, Token

__all__ = ["parse"]

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<call>(?:np\.(?:log|exp|sqrt)|log|exp|sqrt|C)\([A-Za-z_]\w*\))"
    r"|(?P<name>[A-Za-z_]\w*)"
    r"|`(?P<quoted>[^`\\]+)`"
    r"|(?P<one>1)(?![\w.])"
    r"|(?P<operator>[~+:*()])"
    r")"
)
# precedence of the binary operators formulaic reads here
_PRECEDENCE = {"+": 100, "*": 200, ":": 300}


def _tokens(formula: str) -> list[tuple[str, str]] | None:
    """(kind, text) of each token, or ``None`` where some text is not one of ours."""
    found, position, end = [], 0, len(formula.rstrip())
    while position < end:
        matched = _TOKEN.match(formula, position)
        if matched is None or matched.end() == position:
            return None
        kind = matched.lastgroup
        found.append((kind, matched.group(kind)))
        position = matched.end()
    return found


def _factor_term(kind: str, text: str) -> Term:
    token_kind = {"call": "python", "name": "name", "quoted": "name", "one": "value"}[kind]
    return Term([Token(text, kind=token_kind).to_factor()])


class _Refused(Exception):
    """A formula this parser does not read."""


def _join(operator: str, left: list[Term], right: list[Term]) -> list[Term]:
    if operator == "+":
        return _unique([*left, *right])
    products = [one * other for one in left for other in right]
    return _unique(products if operator == ":" else [*left, *right, *products])


def _unique(terms: list[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def _expression(tokens: list, position: int, minimum: int) -> tuple[list[Term], int, str]:
    """Precedence climbing: the terms of the expression starting at ``position`` whose
    operators bind at least as tightly as ``minimum``; (terms, next position, the operator
    of its top node or '')."""
    if position >= len(tokens):
        raise _Refused
    kind, text = tokens[position]
    if kind == "operator" and text == "(":
        terms, position, _top = _expression(tokens, position + 1, 0)
        if position >= len(tokens) or tokens[position] != ("operator", ")"):
            raise _Refused
        position += 1
    elif kind == "operator":
        raise _Refused
    else:
        terms, position = [_factor_term(kind, text)], position + 1
    top = ""
    while position < len(tokens):
        kind, text = tokens[position]
        if kind != "operator" or text not in _PRECEDENCE or _PRECEDENCE[text] < minimum:
            break
        if text == "*" and top == "*":
            raise _Refused  # formulaic reads a chain of '*' as one n-ary product
        right, position, right_top = _expression(tokens, position + 1, _PRECEDENCE[text] + 1)
        if text == "*" and right_top == "*":
            raise _Refused
        if text != "+" and any(term.degree == 0 for term in (*terms, *right)):
            raise _Refused  # the intercept inside a product
        terms, top = _join(text, terms, right), text
    return terms, position, top


def parse(formula: str) -> Formula | None:
    """formulaic's ``Formula(formula)`` for a simple ``outcome ~ terms`` formula, or ``None``."""
    tokens = _tokens(formula)
    if tokens is None or tokens.count(("operator", "~")) != 1:
        return None
    split = tokens.index(("operator", "~"))
    left, right = tokens[:split], tokens[split + 1 :]
    if len(left) != 1 or left[0][0] not in ("name", "quoted") or not right:
        return None
    rhs = _right_terms(tuple(right))
    if rhs is None:
        return None
    return Formula(
        lhs=SimpleFormula([_factor_term(*left[0])]),
        rhs=SimpleFormula(list(rhs)),
    )


@functools.lru_cache(maxsize=1024)
def _right_terms(right: tuple[tuple[str, str], ...]) -> tuple[Term, ...] | None:
    """The right-hand side's terms, the intercept first, from its tokens; ``None`` where this
    parser refuses them. Kept per right-hand side: a battery fits one right-hand side to
    several outcomes (formulaic's terms are not changed once made, so formulas share them)."""
    try:
        terms, position, _top = _expression(list(right), 0, 0)
    except _Refused:
        return None
    if position != len(right):
        return None
    return tuple(_unique([_factor_term("one", "1"), *terms]))
