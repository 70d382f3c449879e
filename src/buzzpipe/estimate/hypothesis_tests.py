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
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from buzzpipe.errors import EstimationError, InputError

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

_NAME_EDGE = r"A-Za-z0-9_."
_STATA_B = re.compile(r"_b\[\s*([^\]]+?)\s*\]")


def _placeholder(index: int) -> str:
    return f"__coef_{index}__"


def _substitute_names(expression: str, names: Sequence[str]) -> str:
    """Replace coefficient names by placeholders in one pass, longest names first.

    Names may hold brackets, dots, colons and parentheses (formulaic spellings), so they are
    matched literally, and only where they are not part of a longer identifier.
    """

    order = sorted(range(len(names)), key=lambda i: -len(names[i]))
    stata_spelling = re.compile(
        r"_b\[\s*(?:" + "|".join(f"(?P<n{i}>{re.escape(names[i])})" for i in order) + r")\s*\]"
    )
    text = stata_spelling.sub(lambda match: _placeholder(int(match.lastgroup[1:])), expression)
    leftover = _STATA_B.search(text)
    if leftover:
        raise InputError(
            "unknown coefficient in _b[...]",
            value=leftover.group(0),
            expected=f"one of {', '.join(names)}",
        )
    pattern = re.compile(
        "|".join(
            rf"(?<![{_NAME_EDGE}])(?P<n{i}>{re.escape(names[i])})(?![{_NAME_EDGE}\[(])"
            for i in order
        )
    )

    def replace(match: re.Match[str]) -> str:
        return _placeholder(int(match.lastgroup[1:]))

    return pattern.sub(replace, text)


def _parse(expression: str, names: Sequence[str]) -> ast.Expression:
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
class WaldTest:
    """A Wald test of R b = q: chi2(q) under the normal reference, F(q, df) under the t."""

    statistic: float
    df_numerator: int
    df_denominator: float | None
    p_value: float
    distribution: str
    restrictions: tuple[str, ...]
    difference: np.ndarray = field(repr=False)

    def __str__(self) -> str:
        lines = [f"({i + 1}) {text}" for i, text in enumerate(self.restrictions)]
        if self.distribution == "F":
            lines.append(
                f"F({self.df_numerator}, {self.df_denominator:g}) = {self.statistic:.4f}, "
                f"Prob > F = {self.p_value:.4f}"
            )
        else:
            lines.append(
                f"chi2({self.df_numerator}) = {self.statistic:.4f}, "
                f"Prob > chi2 = {self.p_value:.4f}"
            )
        return "\n".join(lines)


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
    """Stata's `test`: Wald test of linear restrictions, given as text or as a matrix R (with q).

    ``"x1 = x2; x3"`` or ``["x1 = x2", "x3"]`` test x1 = x2 and x3 = 0 jointly. Under a t
    reference (LPM) the statistic is W/q against F(q, df), otherwise W against chi2(q). Tests
    that the covariance's rank cannot support are refused with the reason.
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
        p_value = float(stats.chi2.sf(statistic, n_restrictions))
        return WaldTest(statistic, n_restrictions, None, p_value, "chi2", tuple(texts), difference)
    f_statistic = statistic / n_restrictions
    p_value = float(stats.f.sf(f_statistic, n_restrictions, estimates.df))
    return WaldTest(
        f_statistic, n_restrictions, estimates.df, p_value, "F", tuple(texts), difference
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
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.clip(np.diag(np.atleast_2d(vcov)), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = estimate / se
    critical = critical_value(df, level)
    if df is None:
        p_value = 2.0 * stats.norm.sf(np.abs(statistic))
        stat_name = "z"
    else:
        p_value = 2.0 * stats.t.sf(np.abs(statistic), df)
        stat_name = "t"
    return pd.DataFrame(
        {
            "estimate": estimate,
            "se": se,
            stat_name: statistic,
            "p": p_value,
            "ci_lower": estimate - critical * se,
            "ci_upper": estimate + critical * se,
        },
        index=pd.Index(list(names), name=index_name),
    )


def critical_value(df: float | None, level: float = 95.0) -> float:
    """Two-sided critical value of the normal (df None) or t(df) reference."""
    upper = 1.0 - (1.0 - level / 100.0) / 2.0
    return float(stats.norm.ppf(upper) if df is None else stats.t.ppf(upper, df))


def lincom(
    source: object, expression: str, level: float = 95.0, df: float | None | str = "fit"
) -> Combination:
    """Stata's `lincom`: a linear combination of coefficients, e.g. ``"intl - regional"``."""
    estimates = as_estimates(source, df)
    if "=" in expression:
        raise InputError(
            "lincom takes an expression, not an equation",
            value=expression,
            expected="e.g. 'breadth_international - breadth_regional' (use wald_test for '=')",
        )
    names = list(estimates.params.index.astype(str))
    weights, constant = _linear_form(_parse(expression, names).body, len(names), expression)
    value = float(weights @ estimates.params.to_numpy() + constant)
    variance = float(weights @ estimates.vcov.to_numpy() @ weights)
    table = inference_table(
        [expression], np.array([value]), np.array([[variance]]), estimates.df, level
    )
    vcov = pd.DataFrame([[variance]], index=[expression], columns=[expression])
    return Combination(table, vcov, estimates.df, level)


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "exp": np.exp,
    "log": np.log,
    "ln": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "normal": stats.norm.cdf,
    "normalden": stats.norm.pdf,
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
    """Stata's `nlcom`: nonlinear combinations with delta-method errors (numerical Jacobian).

    Expressions are text over coefficient names (``"breadth_international /
    breadth_regional"``, ``"exp(x)"``) or functions of the params Series; a mapping names them
    (Stata's ``nlcom (name: exp)``). As in Stata without ``df()``, the reference is normal;
    pass ``df="fit"`` to use the fit's t reference. For a ratio whose denominator may be near
    zero use ``fieller_ratio`` instead: the delta method is wrong there.
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
