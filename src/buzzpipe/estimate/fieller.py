"""Fieller confidence sets for the ratio of two (combinations of) coefficients.

"Pipelines are N times as powerful as buzz" is a ratio of coefficients. When the denominator is
imprecise the delta method's symmetric interval is wrong; Fieller's set inverts the Wald test of
numerator - theta * denominator = 0 exactly, and may be a bounded interval, the whole line or the
union of two rays, which is reported as such rather than forced into "estimate +- error".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from buzzpipe.errors import InputError
from buzzpipe.estimate.hypothesis_tests import (
    _linear_form,
    _parse,
    as_estimates,
    critical_value,
)

# The quadratic's leading coefficient counts as zero below this share of its scale.
_DEGENERATE = 1e-12


@dataclass(frozen=True)
class FiellerInterval:
    """The confidence set {theta : Wald(numerator - theta * denominator = 0) <= critical^2}.

    ``kind`` is one of:
      - "bounded": [lower, upper] (the denominator is significant at this level);
      - "two_rays": (-inf, lower] united with [upper, +inf) (the estimate lies in one ray);
      - "unbounded": the whole real line (neither is distinguishable from zero);
      - "ray_above" / "ray_below": [lower, +inf) / (-inf, upper] (knife-edge case);
      - "empty": no ratio is consistent with the data (only with a singular covariance).
    """

    numerator: str
    denominator: str
    estimate: float
    kind: str
    lower: float
    upper: float
    level: float
    critical: float
    denominator_statistic: float
    delta_se: float

    @property
    def delta_ci(self) -> tuple[float, float]:
        """The delta method's interval, shown beside Fieller's for comparison only."""
        half = self.critical * self.delta_se
        return self.estimate - half, self.estimate + half

    @property
    def pieces(self) -> list[tuple[float, float]]:
        """The set as a list of closed intervals (infinite ends for rays)."""
        if self.kind == "empty":
            return []
        if self.kind == "two_rays":
            return [(-math.inf, self.lower), (self.upper, math.inf)]
        return [(self.lower, self.upper)]

    def contains(self, theta: float) -> bool:
        """Whether the ratio ``theta`` is in the confidence set."""
        return any(low <= theta <= high for low, high in self.pieces)

    def __str__(self) -> str:
        label = f"{self.numerator} / {self.denominator}"
        level = f"{self.level:g}%"
        if self.kind == "bounded":
            text = f"[{self.lower:.6g}, {self.upper:.6g}]"
        elif self.kind == "two_rays":
            text = f"(-inf, {self.lower:.6g}] and [{self.upper:.6g}, +inf) (two rays)"
        elif self.kind == "unbounded":
            text = "(-inf, +inf): the ratio is not identified at this level"
        elif self.kind == "ray_above":
            text = f"[{self.lower:.6g}, +inf)"
        elif self.kind == "ray_below":
            text = f"(-inf, {self.upper:.6g}]"
        else:
            text = "empty"
        return f"{label} = {self.estimate:.6g}; Fieller {level} set: {text}"


def fieller_set(
    numerator: float,
    denominator: float,
    var_numerator: float,
    covariance: float,
    var_denominator: float,
    critical: float,
) -> tuple[str, float, float]:
    """Solve (a - t b)^2 <= c^2 (Vaa - 2 t Vab + t^2 Vbb) for t: returns (kind, lower, upper).

    With A = b^2 - c^2 Vbb, B = a b - c^2 Vab, C = a^2 - c^2 Vaa the set is
    A t^2 - 2 B t + C <= 0: bounded when A > 0, two rays or the whole line when A < 0.
    """
    a, b = float(numerator), float(denominator)
    c2 = float(critical) ** 2
    lead = b * b - c2 * var_denominator
    half_linear = a * b - c2 * covariance
    constant = a * a - c2 * var_numerator
    discriminant = half_linear * half_linear - lead * constant
    scale = b * b + c2 * abs(var_denominator)
    if abs(lead) <= _DEGENERATE * scale:
        # Linear inequality -2 B t + C <= 0.
        if half_linear > 0:
            return "ray_above", constant / (2.0 * half_linear), math.inf
        if half_linear < 0:
            return "ray_below", -math.inf, constant / (2.0 * half_linear)
        if constant <= 0:
            return "unbounded", -math.inf, math.inf
        return "empty", math.nan, math.nan
    if discriminant < 0:
        return ("empty", math.nan, math.nan) if lead > 0 else ("unbounded", -math.inf, math.inf)
    root = math.sqrt(discriminant)
    # Numerically stable roots of A t^2 - 2 B t + C = 0.
    pivot = half_linear + math.copysign(root, half_linear) if half_linear != 0 else root
    if pivot != 0:
        first, second = pivot / lead, constant / pivot
    else:
        first = second = 0.0
    low, high = min(first, second), max(first, second)
    if lead > 0:
        return "bounded", low, high
    if discriminant == 0:
        return "unbounded", -math.inf, math.inf
    return "two_rays", low, high


def fieller_ratio(
    source: object,
    numerator: str,
    denominator: str,
    alpha: float = 0.05,
    df: float | None | str = "fit",
) -> FiellerInterval:
    """Fieller's confidence set for a ratio of two (combinations of) coefficients.

    Parameters
    ----------
    source : Fit, MarginsResult, SuestResult or Combination
        Anything with ``params`` and ``vcov``.
    numerator, denominator : str
        Coefficient names or linear expressions of them without constants (e.g.
        ``"breadth_international"``).
    alpha : float, default 0.05
        The set has level 1 - alpha.
    df : float, None or "fit", default "fit"
        The reference: the source's own (t for the LPM), ``None`` for the normal.

    Returns
    -------
    FiellerInterval
        ``estimate``, ``kind`` ("bounded", "two_rays", "unbounded", "ray_above", "ray_below",
        "empty"), ``lower``/``upper``, ``pieces`` (the set as intervals), ``contains(theta)`` and
        the delta method's interval (``delta_ci``) for comparison.

    Notes
    -----
    The set is every theta for which numerator - theta * denominator = 0 is not rejected. When
    the denominator is not distinguishable from zero it is two rays or the whole line, and the
    delta method's interval is misleading.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> ratio = bp.fieller_ratio(product, "breadth_international", "breadth_regional")
    >>> ratio.kind
    'two_rays'
    >>> ratio.contains(1.0)
    False
    """
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha must lie strictly between 0 and 1", value=alpha)
    estimates = as_estimates(source, df)
    names = list(estimates.params.index.astype(str))
    weights = []
    for expression in (numerator, denominator):
        vector, constant = _linear_form(_parse(expression, names).body, len(names), expression)
        if constant != 0.0:
            raise InputError(
                "a Fieller ratio's numerator and denominator are combinations of coefficients "
                "without constants",
                value=expression,
            )
        weights.append(vector)
    R = np.vstack(weights)
    a, b = R @ estimates.params.to_numpy()
    V = R @ estimates.vcov.to_numpy() @ R.T
    level = 100.0 * (1.0 - alpha)
    critical = critical_value(estimates.df, level)
    kind, lower, upper = fieller_set(a, b, V[0, 0], V[0, 1], V[1, 1], critical)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(np.divide(a, b))
        delta_variance = V[0, 0] / b**2 - 2.0 * a * V[0, 1] / b**3 + a**2 * V[1, 1] / b**4
    denominator_statistic = float(b * b / V[1, 1]) if V[1, 1] > 0 else math.inf
    return FiellerInterval(
        numerator=numerator,
        denominator=denominator,
        estimate=estimate,
        kind=kind,
        lower=lower,
        upper=upper,
        level=level,
        critical=critical,
        denominator_statistic=denominator_statistic,
        delta_se=float(math.sqrt(max(delta_variance, 0.0))) if b != 0 else math.inf,
    )
