"""Average changes in the predicted probability of innovating, with delta-method gradients.

A change is the mean over the estimation sample of F(x_changed' b) - F(x' b), where the changed
design is rebuilt from changed data through the fit's own specification (so log(), factors and
interactions follow, Stata's ``margins`` semantics). Its gradient in b is
mean(f(x_changed' b) x_changed - f(x' b) x), which gives delta-method errors and the Fieller set
of a ratio of two changes. Binary models only (logit, probit, LPM).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from buzzpipe.errors import InputError
from buzzpipe.estimate.fieller import fieller_set
from buzzpipe.estimate.hypothesis_tests import critical_value, reference_df
from buzzpipe.results import Estimate, Hypothesis, Inference, Interval
from buzzpipe.results.vocabulary import Family, InferenceMethod
from buzzpipe.study.models import BREADTH_CAP, local_scale
from buzzpipe.survey import measures
from buzzpipe.survey.schema import (
    any_column,
    breadth_column,
)

BINARY_FAMILIES = (Family.LOGIT, Family.PROBIT, Family.LPM)


@dataclass(frozen=True)
class ProbabilityChange:
    """A mean change in predicted probability and its gradient with respect to the coefficients."""

    value: float
    gradient: np.ndarray


def probability_and_density(eta: np.ndarray, family: str) -> tuple[np.ndarray, np.ndarray]:
    """F(eta) and f(eta) of a binary model's link."""
    if family == Family.LOGIT:
        probability = 1.0 / (1.0 + np.exp(-eta))
        return probability, probability * (1.0 - probability)
    if family == Family.PROBIT:
        return stats.norm.cdf(eta), stats.norm.pdf(eta)
    if family == Family.LPM:
        return eta, np.ones_like(eta)
    raise InputError("probability changes need a binary model", value=family)


def apply_programme(frame: pd.DataFrame, scale: str, cap: int = BREADTH_CAP) -> pd.DataFrame:
    """A copy of frame in which every firm below the cap has one more kind of partner at scale;
    a firm at the cap (every partner type at that scale) is held there.

    This is the one definition of a +1 change: the probability changes, the margins' +1 rows
    (``cap=``) and the policy counterfactuals all use it. The with-group breadth, the any-flag
    and the regime follow the new breadth.
    """
    column = breadth_column(scale)
    if column not in frame.columns:
        raise InputError("the survey has no breadth at this scale", column=column)
    changed = frame.copy()
    gains = (frame[column] < cap).to_numpy()
    changed[column] = frame[column] + gains
    with_group = breadth_column(scale, with_group=True)
    if with_group in frame.columns:
        changed[with_group] = frame[with_group] + gains
    flag = any_column(scale)
    if flag in frame.columns:
        changed[flag] = (changed[column] > 0).astype(frame[flag].dtype)
    if "regime" in frame.columns:
        local = local_scale(frame)
        changed["regime"] = measures.regime(
            (changed[breadth_column(local)] > 0).astype(float),
            (changed[breadth_column("international")] > 0).astype(float),
        )
    return changed


def plus_one(scale: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A data change: one more kind of partner at scale for every firm below the cap of
    :data:`BREADTH_CAP`, firms at the cap held there (:func:`apply_programme`)."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        return apply_programme(frame, scale)

    return change


def average_change(
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    base: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> ProbabilityChange:
    """Mean of F(design(change(sample)) b) - F(design(base(sample)) b) with its gradient."""
    params = fitted.params[fitted.x_names].to_numpy(dtype=float)
    designs = change_designs(fitted, sample, change, base)
    return change_at(params, *designs, sampling_weights(fitted, sample), family)


def change_designs(
    fitted: Any,
    sample: pd.DataFrame,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    base: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The designs of the changed and the base data, rebuilt through the fit's specification."""
    reference = sample if base is None else base(sample)
    x_changed = np.asarray(fitted.design_matrix(change(sample)), dtype=float)
    return x_changed, np.asarray(fitted.design_matrix(reference), dtype=float)


def change_at(
    params: np.ndarray,
    x_changed: np.ndarray,
    x_base: np.ndarray,
    weights: np.ndarray,
    family: str,
) -> ProbabilityChange:
    """sum_i w_i (F(x_changed_i' b) - F(x_base_i' b)) at coefficients b, with its gradient."""
    p_changed, f_changed = probability_and_density(x_changed @ params, family)
    p_base, f_base = probability_and_density(x_base @ params, family)
    value = float(weights @ (p_changed - p_base))
    gradient = (weights * f_changed) @ x_changed - (weights * f_base) @ x_base
    return ProbabilityChange(value, gradient)


@dataclass(frozen=True)
class ChangeDifference:
    """g(b), the difference of two average changes as a function of the coefficients b (the
    designs and weights fixed), with its gradient: a restriction g(b) = 0 for
    :meth:`~buzzpipe.estimate.wild_bootstrap.WildScoreBootstrap.restriction_test`."""

    first: tuple[np.ndarray, np.ndarray]  # (changed, base) designs of the first change
    second: tuple[np.ndarray, np.ndarray]
    weights: np.ndarray  # normalised to sum 1
    family: str

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        first = change_at(params, *self.first, self.weights, self.family)
        second = change_at(params, *self.second, self.weights, self.family)
        return first.value - second.value, first.gradient - second.gradient

    def many(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g and its gradient at every column of ``params`` (p x m) in one pass: m values and
        a p x m matrix, each column what :meth:`__call__` gives at that column (to rounding).

        The four designs differ from the first only in the columns a change sets (the scales'
        breadth), so each index is the first design's plus those columns' difference, and
        the gradient one product with the first design plus the differing columns'."""
        reference, differences = self._shared_designs()
        shared = reference @ params
        values = np.zeros(params.shape[1])
        weighted = np.zeros((reference.shape[0], params.shape[1]))
        gradients = np.zeros(params.shape)
        for level, (columns, difference) in zip(self._levels(), differences, strict=True):
            eta = shared if not columns.size else shared + difference @ params[columns]
            probability, density = probability_and_density(eta, self.family)
            values += level * (self.weights @ probability)
            density *= level * self.weights[:, None]
            weighted += density
            if columns.size:
                gradients[columns] += difference.T @ density
        gradients += reference.T @ weighted
        return values, gradients

    @staticmethod
    def _levels() -> tuple[float, float, float, float]:
        """The sign of each design in g: first changed, first base, second changed, base."""
        return 1.0, -1.0, -1.0, 1.0

    def _shared_designs(self) -> tuple[np.ndarray, list]:
        """The first changed design, and for each of the four designs the columns where it
        differs from it with those columns' differences (cached)."""
        cached = self.__dict__.get("_shared")
        if cached is None:
            reference = self.first[0]
            differences = []
            for design in (*self.first, *self.second):
                columns = np.flatnonzero(np.any(design != reference, axis=0))
                differences.append((columns, design[:, columns] - reference[:, columns]))
            cached = (reference, differences)
            object.__setattr__(self, "_shared", cached)  # frozen: a cache, not a field
        return cached


def change_difference(
    fitted: Any,
    sample: pd.DataFrame,
    family: str,
    first: tuple[Callable, Callable | None],
    second: tuple[Callable, Callable | None],
) -> ChangeDifference:
    """The difference of two average changes, each (change, base) as :func:`average_change`
    takes them, as a function of the coefficients."""
    return ChangeDifference(
        change_designs(fitted, sample, *first),
        change_designs(fitted, sample, *second),
        sampling_weights(fitted, sample),
        family,
    )


def sampling_weights(fitted: Any, sample: pd.DataFrame) -> np.ndarray:
    """Weights of an average over the sample: the fit's sampling weights, normalised to sum 1."""
    column = getattr(fitted, "weights", None)
    if isinstance(column, str) and column in sample.columns:
        weights = sample[column].to_numpy(dtype=float)
    else:
        weights = np.ones(len(sample))
    return weights / weights.sum()


def coefficient_covariance(fitted: Any) -> np.ndarray:
    """The covariance of the design's coefficients (ordered logit cut points left out)."""
    names = list(fitted.x_names)
    if list(fitted.vcov.index) == names and list(fitted.vcov.columns) == names:
        return fitted.vcov.to_numpy(dtype=float)  # already in that order: no .loc
    return fitted.vcov.loc[names, names].to_numpy(dtype=float)


def compose(*changes: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    """Apply data changes one after another."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        for step in changes:
            frame = step(frame)
        return frame

    return change


def change_estimate(
    fitted: Any,
    change: ProbabilityChange,
    inference: Inference,
    hypothesis: Hypothesis | None = None,
) -> Estimate:
    """A probability change as an Estimate with a delta-method error and the fit's reference."""
    vcov = coefficient_covariance(fitted)
    se = float(math.sqrt(max(change.gradient @ vcov @ change.gradient, 0.0)))
    df = reference_df(fitted)
    critical = critical_value(df)
    statistic = change.value / se if se > 0 else math.nan
    reference = stats.norm if df is None else stats.t(df)
    return Estimate(
        estimate=change.value,
        std_error=se,
        p_value=float(2.0 * reference.sf(abs(statistic))) if se > 0 else math.nan,
        inference=inference.derived(InferenceMethod.DELTA_METHOD),
        interval=Interval.bounded(change.value - critical * se, change.value + critical * se),
        statistic=statistic,
        hypothesis=hypothesis,
    )


def ratio_estimate(
    fitted: Any,
    numerator: ProbabilityChange,
    denominator: ProbabilityChange,
    inference: Inference,
    hypothesis: Hypothesis | None = None,
    level: float = 0.95,
) -> Estimate:
    """The ratio of two probability changes with Fieller's set (possibly unbounded)."""
    vcov = coefficient_covariance(fitted)
    g_num, g_den = numerator.gradient, denominator.gradient
    critical = critical_value(reference_df(fitted), 100.0 * level)
    kind, low, high = fieller_set(
        numerator.value,
        denominator.value,
        float(g_num @ vcov @ g_num),
        float(g_num @ vcov @ g_den),
        float(g_den @ vcov @ g_den),
        critical,
    )
    return Estimate(
        estimate=numerator.value / denominator.value if denominator.value != 0 else math.nan,
        std_error=None,
        p_value=math.nan,
        inference=inference.derived(InferenceMethod.FIELLER),
        interval=fieller_interval(kind, low, high, level),
        hypothesis=hypothesis,
        note=f"Fieller set: {kind.replace('_', ' ')}; described, not used for a verdict",
    )


def fieller_interval(kind: str, low: float, high: float, level: float) -> Interval:
    """A Fieller set (kind, lower, upper) as an Interval of segments."""
    if kind == "empty":
        return Interval([], level)
    if kind == "two_rays":
        return Interval([(-math.inf, low), (high, math.inf)], level)
    return Interval([(low, high)], level)
