"""Wald tests, joint tests, linear and nonlinear combinations of coefficients (Stata's `test`,
`lincom` and `nlcom`), with the reference distribution the fit uses (t/F for the linear
probability model, normal/chi-squared otherwise).

Every function takes anything with ``params`` (a Series) and ``vcov`` (a DataFrame): a core
``Fit``, a ``SuestResult`` or a ``MarginsResult``. Coefficients are named as the fit names them
(formulaic term names such as ``np.log(employees)`` or ``C(industry)[T.2]``); Stata's ``_b[name]``
spelling is accepted too.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate.reference import (  # noqa: F401  critical_value: imported from here
    chi2_sf,
    critical_value,
    f_sf,
    normal_cdf,
    normal_pdf,
    two_sided_p,
)

# Relative eigenvalue below which a covariance direction counts as empty (rank deficiency).
RANK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Estimates:
    """Coefficients, their covariance and the reference degrees of freedom (None: normal)."""

    params: pd.Series
    vcov: pd.DataFrame
    df: float | None = None


def reference_df(fit: object) -> float | None:
    """Degrees of freedom of the t/F reference a fit uses, or None for the normal reference.

    Stata: after `regress` (our LPM) tests use t(N-K), or t(G-1) with clustered errors; after
    maximum-likelihood models they use the normal / chi-squared reference. Results of this
    package (margins, combinations) carry their reference as ``df``.
    """
    if isinstance(fit, Estimates):
        return fit.df
    if hasattr(fit, "uses_t"):
        if not fit.uses_t:
            return None
        inference = getattr(fit, "df_inference", None)
        if inference is not None and math.isfinite(float(inference)):
            return float(inference)
        n_clusters = getattr(fit, "n_clusters", None)
        if str(getattr(fit, "vcov_type", "")).startswith("cluster") and n_clusters:
            return float(n_clusters - 1)
        return float(fit.df_resid)
    explicit = getattr(fit, "df", None)
    return None if explicit is None else float(explicit)


def as_estimates(source: object, df: float | None | str = "fit") -> Estimates:
    """View any fitted object (Fit, SuestResult, MarginsResult, Estimates) as Estimates.

    ``df="fit"`` keeps the reference the object uses; a number or None overrides it.
    """
    if isinstance(source, Estimates) and df == "fit":
        return source
    params = source.params
    vcov = source.vcov
    if not isinstance(params, pd.Series):
        params = pd.Series(np.asarray(params, dtype=float))
    if not isinstance(vcov, pd.DataFrame):
        vcov = pd.DataFrame(np.asarray(vcov, dtype=float), index=params.index, columns=params.index)
    chosen = reference_df(source) if df == "fit" else df
    return Estimates(params=params.astype(float), vcov=vcov.astype(float), df=chosen)


# --------------------------------------------------------------------------------------------
# Parsing expressions over coefficient names
# --------------------------------------------------------------------------------------------

# characters that continue an identifier: a name is not matched with one just before it, nor
# with one of these or "[" or "(" just after it (``x`` is not found in ``x2``, ``ax`` or ``x[T.1]``)
_NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
_NAME_FOLLOWERS = _NAME_CHARACTERS | {"[", "("}
_STATA_B = re.compile(r"_b\[\s*([^\]]+?)\s*\]")


def _placeholder(index: int) -> str:
    return f"__coef_{index}__"


def _substitute_names(expression: str, names: Sequence[str]) -> str:
    """Replace coefficient names by placeholders in one pass, longest names first.

    Names may hold brackets, dots, colons and parentheses (formulaic spellings), so they are
    matched literally, and only where they are not part of a longer identifier.
    """
    text = expression
    if "_b[" in text and (present := _present(text, names)):
        text = _stata_spelling(tuple(present)).sub(_to_placeholder, text)
    leftover = _STATA_B.search(text)
    if leftover:
        raise InputError(
            "unknown coefficient in _b[...]",
            value=leftover.group(0),
            expected=f"one of {', '.join(names)}",
        )
    return _bare_names_replaced(text, _present(text, names))


def _present(text: str, names: Sequence[str]) -> list[tuple[int, str]]:
    """The (position, name) pairs of the names that occur in ``text`` at all, longest first
    (ties in the list's order): a name that occurs nowhere can match nowhere."""
    return sorted(
        ((i, name) for i, name in enumerate(names) if name and name in text),
        key=lambda pair: -len(pair[1]),
    )


def _bare_names_replaced(text: str, present: Sequence[tuple[int, str]]) -> str:
    """``text`` with each name of ``present`` (position, name; longest first) replaced by its
    placeholder where it stands alone: scanning from the left, at each place the first name of
    ``present`` found there with no identifier character before it and none of
    ``_NAME_FOLLOWERS`` after it, the scan going on after it (what a regular expression of the
    names as alternatives, longest first, finds; compiling one for a fit's 16-48 names cost
    17-21 ms of CPU, paid by the first battery in a process)."""
    chosen: dict[int, tuple[int, int]] = {}  # place -> (rank in present, position in names)
    for rank, (index, name) in enumerate(present):
        place = text.find(name)
        while place >= 0:
            after = place + len(name)
            if (
                place not in chosen
                and (place == 0 or text[place - 1] not in _NAME_CHARACTERS)
                and (after == len(text) or text[after] not in _NAME_FOLLOWERS)
            ):
                chosen[place] = (rank, index)
            place = text.find(name, place + 1)
    pieces, done = [], 0
    for place in sorted(chosen):
        if place < done:
            continue  # inside a name replaced before it
        rank, index = chosen[place]
        pieces += [text[done:place], _placeholder(index)]
        done = place + len(present[rank][1])
    return "".join([*pieces, text[done:]])


def _to_placeholder(match: re.Match[str]) -> str:
    return _placeholder(int(match.lastgroup[1:]))


@functools.lru_cache(maxsize=64)
def _stata_spelling(present: tuple[tuple[int, str], ...]) -> re.Pattern[str]:
    """The pattern of Stata's ``_b[name]`` spelling of the names of ``present`` (position in
    the fit's list, name; longest first), each name's group called ``n<position>``."""
    return re.compile(
        r"_b\[\s*(?:" + "|".join(f"(?P<n{i}>{re.escape(name)})" for i, name in present) + r")\s*\]"
    )


def _parse(expression: str, names: Sequence[str]) -> ast.Expression:
    """The expression's tree over the coefficients' placeholders, parsed once per expression
    and names (the battery asks the same few dozen about 270 times): shared, not to be
    changed."""
    return _parsed(expression, tuple(names))


@functools.lru_cache(maxsize=512)
def _parsed(expression: str, names: tuple[str, ...]) -> ast.Expression:
    text = _substitute_names(expression, names)
    try:
        return ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise InputError(
            "cannot read the expression",
            value=expression,
            expected="arithmetic over coefficient names such as "
            f"'{names[-1] if names else 'x'} - {names[0] if names else 'y'}'",
        ) from error


def _coefficient_index(node: ast.AST) -> int | None:
    if isinstance(node, ast.Name) and node.id.startswith("__coef_"):
        return int(node.id[len("__coef_") : -2])
    return None


def _linear_form(node: ast.AST, n_params: int, original: str) -> tuple[np.ndarray, float]:
    """Return (weights, constant) with expression = weights @ params + constant."""

    def not_linear() -> InputError:
        return InputError(
            "the expression is not linear in the coefficients",
            value=original,
            expected="sums of numbers times coefficients (use nlcom for nonlinear functions)",
        )

    index = _coefficient_index(node)
    if index is not None:
        weights = np.zeros(n_params)
        weights[index] = 1.0
        return weights, 0.0
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return np.zeros(n_params), float(node.value)
    if isinstance(node, ast.Name):
        raise InputError(
            "unknown coefficient name in the expression",
            value=node.id,
            expected="a name from the fit's coefficients",
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        weights, constant = _linear_form(node.operand, n_params, original)
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return sign * weights, sign * constant
    if isinstance(node, ast.BinOp):
        left = _linear_form(node.left, n_params, original)
        right = _linear_form(node.right, n_params, original)
        if isinstance(node.op, ast.Add):
            return left[0] + right[0], left[1] + right[1]
        if isinstance(node.op, ast.Sub):
            return left[0] - right[0], left[1] - right[1]
        if isinstance(node.op, ast.Mult):
            if not left[0].any():
                return left[1] * right[0], left[1] * right[1]
            if not right[0].any():
                return right[1] * left[0], right[1] * left[1]
            raise not_linear()
        if isinstance(node.op, ast.Div):
            if right[0].any():
                raise not_linear()
            if right[1] == 0:
                raise InputError("division by zero in the expression", value=original)
            return left[0] / right[1], left[1] / right[1]
    raise not_linear()


def linear_restriction(expression: str, names: Sequence[str]) -> tuple[np.ndarray, float]:
    """Turn ``"a = b"`` / ``"2*a - b = 1"`` / ``"a"`` (meaning a = 0) into (r, q) with r'b = q."""
    names = list(names)
    sides = expression.split("=")
    if len(sides) > 2 or any(not side.strip() for side in sides):
        raise InputError(
            "a restriction has at most one '=' with something on both sides",
            value=expression,
            expected="for example 'breadth_international = breadth_regional'",
        )
    left = _linear_form(_parse(sides[0], names).body, len(names), expression)
    if len(sides) == 1:
        return left[0], -left[1]
    right = _linear_form(_parse(sides[1], names).body, len(names), expression)
    return left[0] - right[0], right[1] - left[1]


def _split_restrictions(hypothesis: str | Sequence[str]) -> list[str]:
    if isinstance(hypothesis, str):
        parts = [part.strip() for part in hypothesis.split(";")]
    else:
        parts = [str(part).strip() for part in hypothesis]
    parts = [part for part in parts if part]
    if not parts:
        raise InputError("no restriction given", expected="e.g. 'x1 = x2' or ['x1', 'x2']")
    return parts


# --------------------------------------------------------------------------------------------
# Wald tests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestStatistic:
    """A test statistic with its reference distribution: the one holder every test returns.

    ``distribution`` is ``"chi2"``, ``"F"``, ``"t"`` or ``"normal"``; ``df`` holds the
    reference's degrees of freedom: ``(q,)`` for chi2(q), ``(q, d)`` for F(q, d), ``(d,)`` for
    t(d) and ``()`` for the standard normal. ``p_value`` is the upper-tail probability of
    ``statistic`` under it (two-sided for t and normal statistics).
    """

    __test__ = False  # not a pytest test class

    distribution: str
    statistic: float
    df: tuple[float, ...]
    p_value: float

    @property
    def df_numerator(self) -> int | None:
        """The number of restrictions (chi2 and F); None for t and normal statistics."""
        return int(self.df[0]) if self.distribution in ("chi2", "F") else None

    @property
    def df_denominator(self) -> float | None:
        """The F reference's denominator degrees of freedom; None otherwise."""
        return float(self.df[1]) if self.distribution == "F" else None

    def __str__(self) -> str:
        degrees = ", ".join(f"{d:g}" for d in self.df)
        symbol = {"normal": "z"}.get(self.distribution, self.distribution)
        name = f"{symbol}({degrees})" if degrees else symbol
        tail = f"|{symbol}|" if symbol in ("t", "z") else symbol
        return f"{name} = {self.statistic:.4f}, Prob > {tail} = {self.p_value:.4f}"


@dataclass(frozen=True)
class WaldTest(TestStatistic):
    """A Wald test of R b = q: chi2(q) under the normal reference, F(q, df) under the t; the
    :class:`TestStatistic` fields plus the restrictions in words and R b - q."""

    restrictions: tuple[str, ...] = ()
    difference: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def __str__(self) -> str:
        lines = [f"({i + 1}) {text}" for i, text in enumerate(self.restrictions)]
        return "\n".join([*lines, super().__str__()])


def restriction_matrix(
    estimates: Estimates, hypothesis: str | Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse restrictions into (R, q, texts)."""
    names = list(estimates.params.index.astype(str))
    texts = _split_restrictions(hypothesis)
    rows = [linear_restriction(text, names) for text in texts]
    return np.vstack([row[0] for row in rows]), np.array([row[1] for row in rows]), texts


def _check_rank(R: np.ndarray, middle: np.ndarray, texts: Sequence[str]) -> None:
    """Refuse tests the restrictions or the covariance cannot support, saying why."""
    n_restrictions = R.shape[0]
    if np.linalg.matrix_rank(R) < n_restrictions:
        raise EstimationError(
            f"the {n_restrictions} restrictions ({'; '.join(texts)}) are linearly dependent: "
            "drop the redundant ones"
        )
    scale = np.sqrt(np.clip(np.diag(middle), 0.0, None))
    if np.any(scale <= 0.0):
        empty = [texts[i] for i in np.flatnonzero(scale <= 0.0)]
        raise EstimationError(
            f"restriction {'; '.join(empty)} has zero variance under this covariance: "
            "it cannot be tested"
        )
    correlation = middle / np.outer(scale, scale)
    eigenvalues = np.linalg.eigvalsh(correlation)
    rank = int(np.sum(eigenvalues > RANK_TOLERANCE * max(eigenvalues.max(), 1.0)))
    if rank < n_restrictions:
        raise EstimationError(
            f"cannot test {n_restrictions} restrictions jointly: their covariance has rank "
            f"{rank} (a cluster-robust covariance with G clusters has rank at most G-1); "
            f"test at most {rank} of them jointly"
        )


def wald_test(
    source: object,
    hypothesis: str | Sequence[str] | np.ndarray,
    q: Sequence[float] | np.ndarray | None = None,
    df: float | None | str = "fit",
) -> WaldTest:
    """Stata's ``test``: a Wald test of linear restrictions on the coefficients.

    Parameters
    ----------
    source : Fit, MarginsResult, SuestResult or Combination
        Anything with ``params`` (a Series) and ``vcov`` (a DataFrame); ``fit.wald_test(...)``
        is the same call on a fit.
    hypothesis : str, list of str or array_like
        Restrictions as text over coefficient names (``"x1 = x2; x3"`` or ``["x1 = x2", "x3"]``
        test x1 = x2 and x3 = 0 jointly; Stata's ``_b[x1]`` is accepted), or a matrix R.
    q : array_like, optional
        The right-hand side of R b = q when ``hypothesis`` is a matrix (default zeros).
    df : float, None or "fit", default "fit"
        The reference: ``"fit"`` takes the source's own (F(q, df) for the LPM, chi2(q) otherwise),
        ``None`` forces chi2, a number forces F with those denominator degrees of freedom.

    Returns
    -------
    WaldTest
        A :class:`TestStatistic` (``distribution``, ``statistic``, ``df``, ``p_value``) with the
        ``restrictions`` as text and ``difference`` (R b - q).

    Notes
    -----
    Under a t reference the statistic is W/q against F(q, df), otherwise W against chi2(q), as
    Stata reports them. Restrictions the covariance's rank cannot support (a cluster covariance of
    G clusters has rank at most G - 1) are refused with the reason rather than tested.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> test = bp.wald_test(product, "breadth_international = breadth_regional")
    >>> test.distribution, test.df
    ('chi2', (1,))
    >>> round(test.p_value, 4)
    0.0056
    >>> joint = product.wald_test("breadth_international; breadth_regional")
    >>> print(joint)
    (1) breadth_international
    (2) breadth_regional
    chi2(2) = 9.3534, Prob > chi2 = 0.0093
    """
    estimates = as_estimates(source, df)
    b = estimates.params.to_numpy()
    V = estimates.vcov.to_numpy()
    if isinstance(hypothesis, str) or (
        isinstance(hypothesis, Sequence) and hypothesis and isinstance(hypothesis[0], str)
    ):
        R, q_vector, texts = restriction_matrix(estimates, hypothesis)
        if q is not None:
            raise InputError("q is given inside the text restrictions; do not pass q too")
    else:
        R = np.atleast_2d(np.asarray(hypothesis, dtype=float))
        if R.shape[1] != b.size:
            raise InputError(
                "the restriction matrix has the wrong number of columns",
                value=R.shape[1],
                expected=f"{b.size} (one per coefficient)",
            )
        q_vector = np.zeros(R.shape[0]) if q is None else np.asarray(q, dtype=float).ravel()
        names = list(estimates.params.index.astype(str))
        texts = [_describe_row(row, value, names) for row, value in zip(R, q_vector, strict=True)]
    middle = R @ V @ R.T
    _check_rank(R, middle, texts)
    difference = R @ b - q_vector
    statistic = float(difference @ np.linalg.solve(middle, difference))
    n_restrictions = R.shape[0]
    if estimates.df is None:
        p_value = float(chi2_sf(statistic, n_restrictions))
        return WaldTest("chi2", statistic, (n_restrictions,), p_value, tuple(texts), difference)
    f_statistic = statistic / n_restrictions
    p_value = float(f_sf(f_statistic, n_restrictions, estimates.df))
    return WaldTest(
        "F", f_statistic, (n_restrictions, estimates.df), p_value, tuple(texts), difference
    )


def _describe_row(row: np.ndarray, value: float, names: Sequence[str]) -> str:
    terms = [f"{weight:+g}*{names[i]}" for i, weight in enumerate(row) if weight != 0]
    return f"{' '.join(terms) or '0'} = {value:g}"


# --------------------------------------------------------------------------------------------
# Linear and nonlinear combinations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Combination:
    """Estimates of one or more combinations of coefficients with delta-method errors."""

    table: pd.DataFrame
    vcov: pd.DataFrame
    df: float | None
    level: float

    @property
    def params(self) -> pd.Series:
        """The combinations' estimates (so results can be tested again, as with `post`)."""
        return self.table["estimate"]

    @property
    def estimate(self) -> float:
        return float(self.table["estimate"].iloc[0])

    @property
    def se(self) -> float:
        return float(self.table["se"].iloc[0])

    @property
    def p_value(self) -> float:
        return float(self.table["p"].iloc[0])

    @property
    def ci(self) -> tuple[float, float]:
        return float(self.table["ci_lower"].iloc[0]), float(self.table["ci_upper"].iloc[0])

    def __str__(self) -> str:
        return self.table.to_string()

    __repr__ = __str__


def inference_table(
    names: Sequence[str],
    estimate: np.ndarray,
    vcov: np.ndarray,
    df: float | None,
    level: float = 95.0,
    index_name: str = "combination",
) -> pd.DataFrame:
    """Estimate, standard error, z or t, p-value and confidence interval, Stata's columns."""
    return pd.DataFrame(
        inference_columns(estimate, vcov, df, level),
        index=pd.Index(list(names), name=index_name),
    )


def inference_columns(
    estimate: np.ndarray, vcov: np.ndarray, df: float | None, level: float = 95.0
) -> dict[str, np.ndarray]:
    """:func:`inference_table`'s columns as arrays, by name (``z`` or ``t``), without a table."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.clip(np.diag(np.atleast_2d(vcov)), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / se
    critical = critical_value(df, level)
    p_value = two_sided_p(statistic, df)
    stat_name = "z" if df is None else "t"
    return {
        "estimate": estimate,
        "se": se,
        stat_name: statistic,
        "p": p_value,
        "ci_lower": estimate - critical * se,
        "ci_upper": estimate + critical * se,
    }


def lincom(
    source: object, expression: str, level: float = 95.0, df: float | None | str = "fit"
) -> Combination:
    """Stata's ``lincom``: a linear combination of coefficients with its standard error.

    Parameters
    ----------
    source : Fit, MarginsResult, SuestResult or Combination
        Anything with ``params`` and ``vcov``; ``fit.lincom(...)`` is the same call on a fit.
    expression : str
        A linear expression of coefficient names, e.g. ``"breadth_international -
        breadth_regional"`` or ``"2*x1 + x2"`` (no ``=``: use :func:`wald_test` for equations).
    level : float, default 95.0
        Confidence level in percent.
    df : float, None or "fit", default "fit"
        The reference: the source's own (t for the LPM), ``None`` for the normal.

    Returns
    -------
    Combination
        ``estimate``, ``se``, ``p_value``, ``ci`` and the full ``table``; its ``params`` and
        ``vcov`` can be tested again.

    Notes
    -----
    The variance is w' V w for the weights w of the expression; the p-value is two-sided.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> difference = bp.lincom(product, "breadth_international - breadth_regional")
    >>> round(difference.estimate, 4), round(difference.se, 4)
    (0.3186, 0.115)
    >>> [round(bound, 4) for bound in difference.ci]
    [0.0932, 0.544]
    """
    value, variance, reference = linear_combination(source, expression, df)
    table = inference_table(
        [expression], np.array([value]), np.array([[variance]]), reference, level
    )
    vcov = pd.DataFrame([[variance]], index=[expression], columns=[expression])
    return Combination(table, vcov, reference, level)


def linear_combination(
    source: object, expression: str, df: float | None | str = "fit"
) -> tuple[float, float, float | None]:
    """:func:`lincom`'s numbers before its table: the combination's value, its variance
    w' V w and the reference df. A source whose ``params`` and ``vcov`` are a Series and a
    DataFrame (a fit) is read as it is, without :func:`as_estimates`' float copies."""
    if "=" in expression:
        raise InputError(
            "lincom takes an expression, not an equation",
            value=expression,
            expected="e.g. 'breadth_international - breadth_regional' (use wald_test for '=')",
        )
    params, vcov = getattr(source, "params", None), getattr(source, "vcov", None)
    if isinstance(params, pd.Series) and isinstance(vcov, pd.DataFrame):
        reference = reference_df(source) if df == "fit" else df
    else:
        estimates = as_estimates(source, df)
        params, vcov, reference = estimates.params, estimates.vcov, estimates.df
    names = [str(name) for name in params.index]
    weights, constant = _linear_form(_parse(expression, names).body, len(names), expression)
    value = float(weights @ params.to_numpy(dtype=float) + constant)
    variance = float(weights @ vcov.to_numpy(dtype=float) @ weights)
    return value, variance, reference


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "exp": np.exp,
    "log": np.log,
    "ln": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "normal": normal_cdf,
    "normalden": normal_pdf,
    "invlogit": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "logit": lambda p: np.log(p / (1.0 - p)),
}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


def _compile_expression(expression: str, names: Sequence[str]) -> Callable[[np.ndarray], float]:
    """Compile a nonlinear expression over coefficient names into a function of b."""
    tree = _parse(expression, names)
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise InputError(
                "the expression uses something other than arithmetic and functions",
                value=expression,
                expected=f"+ - * / ** and {', '.join(sorted(_FUNCTIONS))}",
            )
        if isinstance(node, ast.Name) and _coefficient_index(node) is None:
            if node.id not in _FUNCTIONS:
                raise InputError(
                    "unknown name in the expression",
                    value=node.id,
                    expected="a coefficient name or one of " + ", ".join(sorted(_FUNCTIONS)),
                )
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
        ):
            raise InputError("only known functions may be called", value=expression)
    code = compile(tree, "<nlcom>", "eval")

    def evaluate(b: np.ndarray) -> float:
        namespace: dict[str, object] = dict(_FUNCTIONS)
        namespace.update({_placeholder(i): b[i] for i in range(len(names))})
        return float(eval(code, {"__builtins__": {}}, namespace))  # noqa: S307 (checked tree)

    return evaluate


def numerical_jacobian(
    function: Callable[[np.ndarray], np.ndarray], point: np.ndarray, relative_step: float = 6e-6
) -> np.ndarray:
    """Central-difference Jacobian (rows: outputs, columns: inputs), steps scaled to the point."""
    point = np.asarray(point, dtype=float)
    centre = np.atleast_1d(np.asarray(function(point), dtype=float))
    jacobian = np.empty((centre.size, point.size))
    for j in range(point.size):
        step = relative_step * max(abs(point[j]), 1e-2)
        up, down = point.copy(), point.copy()
        up[j] += step
        down[j] -= step
        jacobian[:, j] = (
            np.atleast_1d(np.asarray(function(up), dtype=float))
            - np.atleast_1d(np.asarray(function(down), dtype=float))
        ) / (up[j] - down[j])
    return jacobian


NonlinearSpec = str | Callable[[pd.Series], float]


def nlcom(
    source: object,
    expressions: NonlinearSpec | Sequence[NonlinearSpec] | Mapping[str, NonlinearSpec],
    level: float = 95.0,
    df: float | None | str = None,
) -> Combination:
    """Stata's ``nlcom``: nonlinear combinations of coefficients with delta-method errors.

    Parameters
    ----------
    source : Fit, MarginsResult, SuestResult or Combination
        Anything with ``params`` and ``vcov``; ``fit.nlcom(...)`` is the same call on a fit.
    expressions : str, callable, list or dict
        Text over coefficient names (``"breadth_international / breadth_regional"``,
        ``"exp(x)"``; functions exp, log, ln, sqrt, abs, normal, normalden, invlogit, logit) or
        functions of the params Series; a dict names them (Stata's ``nlcom (name: exp)``).
    level : float, default 95.0
        Confidence level in percent.
    df : float, None or "fit", default None
        The reference: normal, as Stata's ``nlcom`` without ``df()``; ``"fit"`` for the fit's.

    Returns
    -------
    Combination
        One row per expression: estimate, se, statistic, p, interval; ``vcov`` is their joint
        delta-method covariance (numerical Jacobian).

    Notes
    -----
    For a ratio whose denominator may be near zero use :func:`buzzpipe.fieller_ratio`: the delta
    method's interval is wrong there.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> odds = bp.nlcom(product, {"odds_ratio": "exp(breadth_international)"})
    >>> round(odds.estimate, 3), round(odds.se, 3)
    (1.34, 0.13)
    """
    estimates = as_estimates(source, df)
    names = list(estimates.params.index.astype(str))
    if isinstance(expressions, Mapping):
        labelled = list(expressions.items())
    elif isinstance(expressions, str) or callable(expressions):
        labelled = [(_label(expressions, 0), expressions)]
    else:
        labelled = [(_label(spec, i), spec) for i, spec in enumerate(expressions)]
    functions = []
    index = estimates.params.index
    for _, spec in labelled:
        if isinstance(spec, str):
            functions.append(_compile_expression(spec, names))
        else:
            functions.append(lambda b, spec=spec: float(spec(pd.Series(b, index=index))))

    def all_values(b: np.ndarray) -> np.ndarray:
        return np.array([function(b) for function in functions])

    b = estimates.params.to_numpy()
    value = all_values(b)
    if not np.all(np.isfinite(value)):
        raise EstimationError(
            "a nonlinear combination is not finite at the estimates: "
            + ", ".join(
                label for (label, _), v in zip(labelled, value, strict=True) if not math.isfinite(v)
            )
        )
    jacobian = numerical_jacobian(all_values, b)
    covariance = jacobian @ estimates.vcov.to_numpy() @ jacobian.T
    labels = [label for label, _ in labelled]
    table = inference_table(labels, value, covariance, estimates.df, level)
    vcov = pd.DataFrame(covariance, index=labels, columns=labels)
    return Combination(table, vcov, estimates.df, level)


def _label(spec: NonlinearSpec, index: int) -> str:
    if isinstance(spec, str):
        return spec.strip()
    return getattr(spec, "__name__", None) or f"_nl_{index + 1}"
