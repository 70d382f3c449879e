"""The named specification of a preset, fitted fast on drawn blocks: what calibration and power
checks estimate over many seeds.

``product ~ breadth_regional + breadth_national + breadth_international + log(employees)
+ foreign_share + C(industry) + C(region) + openness``: the study's controls model on a synthetic
survey (``study/models.py``: breadth at each scale, log employees, foreign share, industry and
region, and the measured 1-5 openness the survey carries), optionally with ``pipeline_exposure``
and ``breadth_regional:breadth_international``. ``openness=False`` gives the specification of
issue 3's wording, without openness, reported beside it. A plain Newton logit with Stata's robust
covariance (sandwich x N/(N-1)); tests check it against statsmodels and ``buzzpipe.fit``. Kept
here, not in ``estimate/``, because calibration fits thousands of small designs built straight
from arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from buzzpipe.errors import EstimationError
from buzzpipe.survey import schema
from buzzpipe.synth.generate import INTERNATIONAL, NATIONAL, REGIONAL, Block, GeneratingParameters

EXTRA_TERMS = ("pipeline_exposure", "breadth_regional:breadth_international")


@dataclass(frozen=True)
class LogitFit:
    """Coefficients and Stata-robust covariance of a logit."""

    names: list[str]
    params: np.ndarray
    robust_cov: np.ndarray

    def coefficient(self, name: str) -> float:
        return float(self.params[self.names.index(name)])

    def z_statistic(self, name: str) -> float:
        i = self.names.index(name)
        return float(self.params[i] / np.sqrt(self.robust_cov[i, i]))


def measured_breadth(block: Block) -> np.ndarray:
    """Breadth per scale as a survey computes it: answered 'yes', group excluded (firm x scale)."""
    group = np.array([t == schema.GROUP_PARTNER_TYPE for t in schema.PARTNER_TYPES])
    answered_yes = block.collaboration
    if block.dont_know is not None:
        answered_yes = answered_yes & ~block.dont_know
    return answered_yes[:, :, ~group].sum(axis=2)


def _fixed_effects(block: Block, parameters: GeneratingParameters) -> tuple[list, list[str]]:
    """Industry then region indicators (treatment coding, the first category the reference)."""
    columns, names = [], []
    for variable, codes, levels in (
        ("industry", block.industry, parameters.industries),
        ("region", block.region, parameters.regions),
    ):
        for level in range(1, len(levels)):
            columns.append((codes == level).astype(float))
            names.append(f"C({variable})[T.{levels[level]}]")
    return columns, names


def _answered_rows(block: Block) -> np.ndarray:
    """Firms whose breadth the survey has at every scale (not all answers "don't know")."""
    rows = np.ones(block.firm_id.size, dtype=bool)
    if block.dont_know is not None:
        group = np.array([t == schema.GROUP_PARTNER_TYPE for t in schema.PARTNER_TYPES])
        rows &= ~block.dont_know[:, :, ~group].all(axis=2).any(axis=1)
    return rows


def named_design(
    block: Block,
    parameters: GeneratingParameters,
    extra_terms: tuple[str, ...] = (),
    *,
    openness: bool = True,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Design matrix of the named specification (treatment coding, first category reference),
    terms in the order formulaic gives the study's formula; ``openness=False`` leaves the
    measured openness out (the specification of issue 3's wording).

    Firms whose breadth the survey leaves missing (every answer at a scale "don't know") and,
    with ``pipeline_exposure`` among the terms, firms without a surveyed regional partner (whose
    exposure the survey leaves missing) are dropped, as listwise deletion would; ``rows`` says
    which firms remain.
    """
    breadth = measured_breadth(block).astype(float)
    columns = [
        np.ones(block.firm_id.size),
        breadth[:, REGIONAL],
        breadth[:, NATIONAL],
        breadth[:, INTERNATIONAL],
        np.log(block.employees),
        block.foreign_share,
    ]
    names = [
        "Intercept",
        schema.breadth_column("regional"),
        schema.breadth_column("national"),
        schema.breadth_column("international"),
        "log(employees)",
        "foreign_share",
    ]
    for term in extra_terms:
        if term == "pipeline_exposure":
            columns.append(block.pipeline_exposure)
        elif term == "breadth_regional:breadth_international":
            columns.append(breadth[:, REGIONAL] * breadth[:, INTERNATIONAL])
        else:
            raise ValueError(f"unknown extra term {term!r}; known: {EXTRA_TERMS}")
        names.append(term)
    effect_columns, effect_names = _fixed_effects(block, parameters)
    columns += effect_columns
    names += effect_names
    if openness:
        columns.append(block.openness.astype(float))
        names.append("openness")
    rows = _answered_rows(block)
    if "pipeline_exposure" in extra_terms:
        rows &= block.pipeline_exposure_known
    return np.column_stack(columns)[rows], names, rows


def fit_logit(
    design: np.ndarray, outcome: np.ndarray, names: list[str], *, tolerance: float = 1e-10
) -> LogitFit:
    """Maximum-likelihood logit by Newton steps, with the robust covariance Stata reports."""
    y = outcome.astype(float)
    params = np.zeros(design.shape[1])
    for _ in range(50):
        eta = design @ params
        mu = 1.0 / (1.0 + np.exp(-eta))
        gradient = design.T @ (y - mu)
        hessian = (design * (mu * (1.0 - mu))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            raise EstimationError("logit design is singular (a category has no firms)") from None
        params += step
        if np.max(np.abs(step)) < tolerance:
            break
    else:
        raise EstimationError("logit did not converge in 50 Newton steps (separation?)")
    mu = 1.0 / (1.0 + np.exp(-(design @ params)))
    bread = np.linalg.inv((design * (mu * (1.0 - mu))[:, None]).T @ design)
    scores = design * (y - mu)[:, None]
    n = design.shape[0]
    robust = bread @ (scores.T @ scores) @ bread * (n / (n - 1))
    return LogitFit(names, params, robust)


def fit_named_specification(
    block: Block,
    parameters: GeneratingParameters,
    extra_terms: tuple[str, ...] = (),
    outcome: str = "product",
    *,
    openness: bool = True,
) -> LogitFit:
    """Fit the named specification (plus extra terms) to one drawn block."""
    design, names, rows = named_design(block, parameters, extra_terms, openness=openness)
    return fit_logit(design, block.outcomes[outcome][rows], names)


REGIME_TERMS = tuple(f"C(regime)[T.{regime}]" for regime in schema.REGIMES[1:])


def fit_regime_model(
    block: Block, parameters: GeneratingParameters, outcome: str = "product"
) -> LogitFit:
    """The study's regime model, ``outcome ~ C(regime) + log(employees) + foreign_share
    + C(industry) + C(region) + openness`` (``study/complementarity.py``), with "none" the base:
    local is any regional partner, global any international one (group left out)."""
    breadth = measured_breadth(block)
    local = breadth[:, REGIONAL] > 0
    global_ = breadth[:, INTERNATIONAL] > 0
    columns = [
        np.ones(block.firm_id.size),
        (local & ~global_).astype(float),
        (~local & global_).astype(float),
        (local & global_).astype(float),
        np.log(block.employees),
        block.foreign_share,
    ]
    names = ["Intercept", *REGIME_TERMS, "log(employees)", "foreign_share"]
    effect_columns, effect_names = _fixed_effects(block, parameters)
    columns += [*effect_columns, block.openness.astype(float)]
    names += [*effect_names, "openness"]
    rows = _answered_rows(block)
    return fit_logit(np.column_stack(columns)[rows], block.outcomes[outcome][rows], names)


def linear_combination_z(fit: LogitFit, weights: dict[str, float]) -> float:
    """z statistic of a linear combination of coefficients under the robust covariance (Stata's
    ``lincom``)."""
    vector = np.zeros(len(fit.names))
    for name, weight in weights.items():
        vector[fit.names.index(name)] = weight
    return float(vector @ fit.params / np.sqrt(vector @ fit.robust_cov @ vector))


def first_partner_difference(
    fit: LogitFit, design: np.ndarray, first: str, second: str
) -> tuple[float, float]:
    """The common-support comparison of two breadth terms (``study/common_support.py``): the
    mean over firms of F(x b) with ``first`` set to 1 rather than 0, minus the same with
    ``second`` set to 1 rather than 0 (every other column as observed), and its delta-method
    standard error under the robust covariance. Returns (difference, standard error)."""

    def step(term: str) -> tuple[float, np.ndarray]:
        column = fit.names.index(term)
        value, gradient = 0.0, np.zeros(len(fit.names))
        for level, sign in ((1.0, 1.0), (0.0, -1.0)):
            changed = design.copy()
            changed[:, column] = level
            probability = 1.0 / (1.0 + np.exp(-(changed @ fit.params)))
            value += sign * float(probability.mean())
            gradient += sign * ((probability * (1.0 - probability)) @ changed) / design.shape[0]
        return value, gradient

    first_value, first_gradient = step(first)
    second_value, second_gradient = step(second)
    gradient = first_gradient - second_gradient
    return first_value - second_value, float(np.sqrt(gradient @ fit.robust_cov @ gradient))


def supermodularity_z(fit: LogitFit) -> float:
    """z of b_both - b_local_only - b_global_only, the study's primary complementarity test
    (one-sided: complements when z > 1.645 at 5%)."""
    local_only, global_only, both = REGIME_TERMS
    return linear_combination_z(fit, {both: 1.0, local_only: -1.0, global_only: -1.0})
