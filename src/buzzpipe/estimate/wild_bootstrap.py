r"""Wild cluster score bootstrap for logit and probit, and confidence sets by test inversion.

With few clusters (the seed study has five city-regions) the cluster-robust Wald test
over-rejects badly. The score bootstrap of Kline and Santos (2012), as run by Stata's ``boottest``
after ML models (Roodman, MacKinnon, Nielsen and Webb 2019, "Fast and wild", Stata Journal 19(1),
section 3.4), needs one restricted fit per hypothesis and no refit per draw.

Algorithm, for H0: b_k = c with clusters g = 1..G, observation weights w_i:

1. Restricted fit: maximise the log-likelihood over the other coefficients with b_k fixed at c,
   i.e. drop column k and add c x_ik to the offset. Call the full restricted vector b~.
2. Scores s_i = w_i dl_i/d eta x_i at b~ (p-vectors) and the observed information
   H = sum_i w_i h_i x_i x_i' at b~ (minus the Hessian of the full, unrestricted model).
3. Partial the nuisance parameters out: a = H^{-1} e_k and u_i = a' s_i. Because the restricted
   fit sets the nuisance scores to zero, u_i is proportional to the efficient score
   s_ik - H_{k,-k} H_{-k,-k}^{-1} s_{i,-k} (partitioned inverse).
4. Cluster sums S_g = sum_{i in g} u_i and cluster shares pi_g = sum_{i in g} w_i / sum_i w_i.
5. For a vector of cluster weights v (v = 1 gives the actual sample):
       N(v) = sum_g v_g S_g,
       J_g(v) = v_g S_g - pi_g N(v)          (recentred, as boottest does for the score bootstrap),
       D(v) = G / (G - 1) sum_g J_g(v)^2      (the small-sample factor of Stata's cluster vce;
                                               ``small_sample=False`` drops it, as boottest
                                               does after ML unless ``small`` is given),
       t(v) = N(v) / sqrt(D(v)).
   t(1) is the cluster-robust score (Lagrange multiplier) statistic; t(v*_b) for draws v*_b of
   Rademacher (+-1) or Webb six-point weights is its bootstrap distribution.
6. Symmetric p-value p = #{b : |t*_b| >= |t|} / B (tie convention: a draw whose statistic equals
   the actual one, to a relative 1e-10, counts as at least as extreme, the conservative choice;
   ``tie_rule="strict"`` counts |t*_b| > |t| only, boottest's rule).
   When the number of distinct draws (2^G or 6^G) is not above B, every draw is enumerated once,
   so p is exact. A constant weight vector v = c 1 gives J(v) = c J(1), N(v) = c N(1), so
   t(c 1) = sign(c) t(1): it always ties the actual statistic. Rademacher has two constant vectors
   (+-1), Webb six (each of its points), so under the inclusive rule the smallest attainable
   p-value is 2 / 2^G (Rademacher) or 6 / 6^G (Webb); with sampling it is 1 / B. With five
   clusters and Rademacher weights it is 1/16: a 5% test is impossible, and the summary says so.
   Under the strict rule the constant vectors never count and p can be 0, but the |t*| take at
   most 2^(G-1) distinct values, so a test rejecting at p <= alpha still rejects a true null
   about 2 / 2^G of the time when that exceeds alpha (under the randomization hypothesis).
   A statistic below ZERO_STATISTIC (1e-8) in absolute value is rounding noise (the null is
   the estimate: the scores sum to zero up to rounding) and counts as zero, with every draw
   below it at that null (``_rounding_zeroed``), on every path that computes p.

Joint tests of q restrictions b_j = c_j (j in K; Roodman et al. 2019, section 3.4): step 1 fixes
all q coefficients through the offset; step 3 projects each score on the q columns of
A = H^{-1} R' (R selects K), so S_g is a q-vector; step 5 becomes
       N(v) = sum_g v_g S_g,  J_g(v) = v_g S_g - pi_g N(v),
       D(v) = G / (G - 1) sum_g J_g(v) J_g(v)',  W(v) = N(v)' D(v)^{-1} N(v),
the cluster-robust score Wald statistic and its bootstrap distribution over the same draws (one
batched q x q solve); p = #{b : W*_b >= W} / B with the tie rule applied to sqrt(W). With q = 1,
W = t^2 and p is the single test's. D has rank at most G - 1: more restrictions are refused.

Confidence sets invert the test: {c : p(c) > alpha}, found on a grid around the estimate (its
restricted fits batched) and refined between grid points that disagree. p(c) is a step function
of c (the draws are fixed), so a bound is where p crosses alpha, found by bisection (about 22
halvings to 1e-7 s.e.). Each draw's statistic less the actual one moves smoothly with c, so
interpolating every draw between a bracket's two ends predicts where p crosses; the halvings'
nulls are evaluated ahead along the path that prediction gives, a round in one batched solve,
and the bound is bisection's own (two or three rounds instead of eight).
Unbounded or disjoint sets are reported as they are.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from buzzpipe import __version__
from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate import random_weights
from buzzpipe.estimate.batched_newton import (
    _NEARLY_SATURATED,
    _column_products,
    _farthest_weighted,
    _gather_positions,
    _rank_and_inverse,
    _times,
    fitted_probability,
    hessians_by_blocks,
    keeps_products,
    newton_batch,
)
from buzzpipe.estimate.bootstrap import BINARY_FAMILIES, design_of_fit
from buzzpipe.estimate.families import binary_terms, get_family
from buzzpipe.estimate.inference_rule import rates_words, why_bootstrap
from buzzpipe.estimate.kernel import block_sums, one_blas_thread
from buzzpipe.estimate.newton import newton
from buzzpipe.estimate.reference import quantile, two_sided_p
from buzzpipe.estimate.wild_kernels import (
    GREATER,
    LESS,
    TWO_SIDED,
    cluster_products,
    draw_excesses,
    score_counts,
    score_statistics,
)

WEBB_BELOW_CLUSTERS = 12  # default to Webb's six-point weights below this many clusters
TIE_TOLERANCE = 1e-10
# a statistic below this in absolute value is rounding noise and counts as zero, with the draws
# below it at that null (``_rounding_zeroed``: the null is the estimate, to 1e-8 s.e.)
ZERO_STATISTIC = 1e-8
SECTIONS = 8  # a confidence-set bound is narrowed SECTIONS-fold a round of bisection
# a round of test inversion evaluates bisection's nulls ahead along the predicted path up to the
# first within PREDICTED_TO ** round of the bracket of the predicted bound: the prediction from
# a grid cell is good to about 0.5% of it, and from a narrower bracket to the square of that
PREDICTED_TO = 0.01
# ... and, where nulls outside the bracket are known, from each draw's excess on the cubic
# through the bracket's ends and the CURVED_NULLS nulls nearest outside it (Newton steps from the
# linear crossing, CURVED_STEPS of them): then the path goes on to the first within CURVED_TRUST
# of the two predictions' distance (the linear one's error; the cubic's is far smaller: 1e-5 of
# the bracket against 1e-3 measured on the battery's second rounds), or to the tolerance where
# that is less than a round of bisection. Both rules only choose which nulls are evaluated
# ahead: bisection reads the p-values of its own nulls, so the bounds are bisection's
CURVED_NULLS = 2
CURVED_STEPS = 3
CURVED_TRUST = 0.01
# a confidence-set end beyond which the statistic moves by at most this much of itself over a
# standard error of the null is numerically undetermined (reported as unbounded)
FLAT_TAIL = 1e-6
# ... judged one standard error beyond a prediction of the end within FLAT_SHIFT standard
# errors of it: a round of bisection from a bracket narrower than FLAT_AHEAD standard errors
# carries that null beside its own (no round of its own after bisection)
FLAT_SHIFT = 1e-4
FLAT_AHEAD = 1e-2
FLAT_MARGIN = 100.0  # ... and an end possibly flat there judged again at the end itself
# restricted fits under g(b) = c for many c (a restriction's confidence set), by Newton steps on
# the Lagrangian (the restriction's curvature included): a step moves no linear index by more
# than this (an upper bound from the columns' largest values); a fit with a linear index beyond
# SEPARATED_INDEX (fitted probabilities 0 or 1 to double precision) or a singular information
# runs into separation: its coefficients diverge (no finite coefficients give that value of g).
# One not settled after RESTRICTION_STEPS steps otherwise is reported as unsettled, not as
# diverging (the Newton steps on the Lagrangian settle an existing fit in a few: on the
# battery's three restriction grids most values within 4 evaluations, all within 10-13, the
# later batches within 2)
RESTRICTION_REACH = 4.0
RESTRICTION_STEPS = 60
SEPARATED_INDEX = 36.0
# g's Hessian by forward differences of its gradient where the restriction gives none
# (``_restriction_second_order``): the step relative to 1 + |b_j|. It shapes the steps only: a
# fit's end point (g(b) = c, the score a multiple of g's gradient) does not depend on it
HESSIAN_STEP = 1e-7
# ... each step kept where it raises the merit l(b) - penalty |g(b) - c| by at least MERIT_RISE
# of its slope times the share taken (less MERIT_ROUNDING of |l|: rounding), else halved from
# the same point; the penalty MERIT_MARGIN times the largest |lambda| seen. A fit whose step
# is halved below SMALLEST_SHARE is unsettled
MERIT_RISE = 1e-4
# g's Hessian in a step is the one made where the fit's last step longer than this (relative to
# 1 + max |b|) ended: it shapes the steps only, and near the fit it changes little
CURVATURE_KEPT_WITHIN = 1e-3
MERIT_ROUNDING = 1e-13
MERIT_MARGIN = 1.5
SMALLEST_SHARE = 1e-6
# why a null of test inversion has no test: ``FIT_FOUND`` where it has one
FIT_FOUND, FIT_DIVERGES, FIT_UNSETTLED = 0, 1, 2
# a null with a row whose curvature is below this (a restricted fit at or near separation) has
# its information summed as its own product (``_null_informations``)
SATURATED_CURVATURE = 1e-6
# the first batch of a column's restricted fits (a set's grid) starts on the tangent of the
# restricted estimates' path within this many cluster-robust standard errors of the estimate
TANGENT_REACH = 6.0
# test inversion's nulls a block: at most this many entries of the n x m linear indices
SCORES_BLOCK = 1 << 21
# test inversion's restricted fits stop at what its p-values need, not at the last bit: a
# p-value there is a count of draws whose statistic passes the actual one, so an error e in the
# statistic can move a confidence-set bound by about e standard errors of the null (t moves
# about one unit a standard error), against the inversion's tolerance of rtol = 1e-7 of one.
# Coefficient sets: Newton stops where its decrement is below INVERSION_DECREMENT (the last,
# tiny step still taken), not 1e-8; restriction sets: the Lagrangian steps stop where one moves
# b by at most INVERSION_STEP (relative to 1 + max |b|), not 1e-10. Measured on the grids (47
# and 19 nulls) and 29 inner nulls of every set of norway2010, buzz and complement (54 and 9
# sets): the statistics moved by at most 7.5e-10 and 3.4e-11 (the restricted estimates by at
# most 2.6e-10 standard errors in the restriction sets), no p-value and no outcome changed;
# 4% fewer Newton passes for the coefficients' fits, 17% fewer Lagrangian steps for the
# restrictions'
INVERSION_DECREMENT = 1e-7
INVERSION_STEP = 1e-7
# bisection's nulls start on the cubic through the restricted estimates already found, most of
# them at the restricted maximum to rounding: such a start is taken as the estimate where its
# Newton decrement g_F' H_FF^-1 g_F, made with the exact information its partialled scores need
# anyway, is below SETTLED_DECREMENT (``_fitted_scores``): its distance from the maximum in the
# information's norm is then about the decrement's root, 1e-9, a bound checked at the null
# itself (the last Newton step's error is expected small, not checked). Measured on every
# bisection null of the 54 coefficient sets of norway2010, buzz and complement (2,560 nulls):
# against fits run to a decrement of 1e-25 the statistics moved by at most 4.3e-10 (7.6e-11
# relative; the fitted path's by 3.9e-11), against the fitted path's by at most the same, no
# p-value changed; about 70% of these nulls settle (86% at 1e-16, whose statistics moved by
# up to 1.2e-9). The others are fitted as before (``restricted_fits``)
SETTLED_DECREMENT = 1e-18
# ... and a restriction set's null whose restricted fit's first Lagrangian step from its start
# has delta' W delta below SETTLED_RESTRICTION is taken as found there, its scores read from
# that step's information (``restricted_fits_under(settled=)``; no second information and
# g's gradient for it). Its distance from the maximum in the information's norm is then about
# 1e-10. The restriction statistics move more per unit of that distance than the
# coefficients': at 1e-18 (the step from the start, without g's curvature) up to 8.3e-10
# against the fitted path; at 1e-20, measured on every batch of the 9 restriction sets of
# norway2010, buzz and complement, up to 2.6e-10, no p-value and no fit outcome changed
SETTLED_RESTRICTION = 1e-20
# test inversion's n x m temporaries of a block of nulls (``partialled_scores_at``) are kept
# on the bootstrap and reused where one holds at most SCRATCH_KEPT numbers (8 MiB); the
# names of the score terms' three (``families.binary_terms(out=)``)
SCRATCH_KEPT = 1 << 20
SCRATCH_TERMS = ("derivative", "curvature", "inverse")
TIE_CONVENTION = (
    "p = share of bootstrap draws with |t*| >= |t| (ties, to a relative 1e-10, count as at least "
    "as extreme)"
)
STRICT_TIE_CONVENTION = (
    "p = share of bootstrap draws with |t*| > |t| (boottest's rule: ties, to a relative 1e-10, do "
    "not count)"
)
TIE_RULES = ("inclusive", "strict")
# The two conventions side by side (docs/few_clusters.md): buzzpipe's default, and Stata's
# boottest after ML models (no G/(G-1) factor unless `small`; |t*| > |t|).
CONVENTIONS = {
    "buzzpipe": {"small_sample": True, "tie_rule": "inclusive"},
    "boottest": {"small_sample": False, "tie_rule": "strict"},
}


@functools.lru_cache(maxsize=16)
def enumerate_draws(n_clusters: int, weight_type: str) -> np.ndarray:
    """Every distinct vector of cluster weights, shape (G, 2^G) or (G, 6^G); read-only, cached."""
    points = _points(weight_type)
    grid = np.array(list(itertools.product(range(len(points)), repeat=n_clusters)), dtype=np.intp)
    draws = points[grid.T]
    draws.flags.writeable = False
    return draws


def _points(weight_type: str) -> np.ndarray:
    if weight_type == "rademacher":
        return random_weights.RADEMACHER_POINTS
    if weight_type == "webb":
        return random_weights.WEBB_POINTS
    raise InputError(
        "unknown wild bootstrap weights", value=weight_type, expected="webb or rademacher"
    )


def distinct_draws(n_clusters: int, weight_type: str) -> float:
    """How many distinct weight vectors there are: 2^G or 6^G (as a float, it can be huge)."""
    return float(len(_points(weight_type))) ** n_clusters


def constant_draws(weight_type: str) -> int:
    """How many enumerated weight vectors are constant (c 1), each tying t(1) in |t|: 2 or 6."""
    return len(_points(weight_type))


def _bootstrap_notes(test, alpha: float) -> list[str]:
    """Why the wild score bootstrap, and the limits of its p-value (single or joint test)."""
    draws = (
        f"all {test.n_draws:,} distinct draws enumerated (exact)"
        if test.enumerated
        else f"{test.n_draws:,} random draws, seed {test.seed}"
    )
    tie_convention = STRICT_TIE_CONVENTION if test.tie_rule == "strict" else TIE_CONVENTION
    factor = math.sqrt(test.n_clusters / (test.n_clusters - 1))
    lines = [
        f"Inference: wild cluster score bootstrap (Kline-Santos; Roodman et al. 2019) with "
        f"{test.weight_type.capitalize()} weights over {test.n_clusters} clusters, {draws}, "
        "null imposed.",
        why_bootstrap(test.n_clusters),
        f"Tie convention: {tie_convention}.",
        f"Smallest attainable p-value: {test.smallest_p_value:.4g}.",
    ]
    if not test.small_sample:
        lines.append(
            "No G/(G-1) factor in the statistic's denominator (boottest's default after ML): "
            f"the statistic is sqrt(G/(G-1)) = {factor:.4f} "
            "times buzzpipe's default, the p-value the same up to ties."
        )
    use_webb = " (use Webb weights)." if test.weight_type == "rademacher" else "."
    if test.smallest_p_value > alpha:
        lines.append(
            f"A test at the {alpha:.0%} level is impossible here: no draw can give p <= "
            f"{alpha:g}" + use_webb
        )
    elif test.enumerated and test.resolution > alpha:
        lines.append(
            f"Strict ties let p be 0 here, but the draws take only {1 / test.resolution:.0f} "
            f"distinct values of |t|: a test at the {alpha:.0%} level rejects a true null about "
            f"{test.resolution:.3g} of the time (under the randomization hypothesis)" + use_webb
        )
    return lines


def _draw_fields(test) -> dict:
    """The record fields that say how the bootstrap drew (shared by single and joint tests)."""
    return {
        "p_value": test.p_value,
        "family": test.family,
        "weight_type": test.weight_type,
        "n_draws": test.n_draws,
        "enumerated": test.enumerated,
        "n_clusters": test.n_clusters,
        "smallest_p_value": test.smallest_p_value,
        "small_sample": test.small_sample,
        "tie_rule": test.tie_rule,
        "resolution": test.resolution,
        "seed": test.seed,
        "version": test.version,
    }


class SeparatedNull(EstimationError):
    """The restricted fit at a null value is separated: its information is singular and the
    score statistic there is undefined (``p_values`` gives NaN; confidence sets accept it)."""


@dataclass
class WildScoreTest:
    """One wild score bootstrap test of b_k = c, with what the user must know to read it."""

    term: str
    null_value: float
    statistic: float  # cluster-robust score statistic t(1)
    p_value: float
    family: str
    weight_type: str
    n_draws: int
    enumerated: bool
    n_clusters: int
    smallest_p_value: float
    seed: int
    distribution: np.ndarray = field(repr=False)  # t* for every draw
    restricted_params: np.ndarray = field(repr=False)
    small_sample: bool = True  # G/(G-1) in the denominator (False: boottest after ML)
    tie_rule: str = "inclusive"  # |t*| >= |t| ("strict": |t*| > |t|, boottest)
    resolution: float = 0.0  # the p-value's step: constant draws / draws, or 1 / B
    alternative: str = "two-sided"  # or "greater" (H1: b > c) / "less": one-sided p-value
    version: str = __version__  # of buzzpipe, so results say what produced them
    rounds: int = 0  # linearised rounds of a nonlinear restriction's fit (0: b_k = c)

    def notes(self, alpha: float = 0.05) -> list[str]:
        """Why this inference, and the limits of its p-value."""
        return _bootstrap_notes(self, alpha)

    def as_record(self, alpha: float = 0.05) -> dict:
        """JSON-ready fields for results.json (the draw-by-draw distribution left out)."""
        return {
            "inference": "wild cluster score bootstrap",
            "term": self.term,
            "null_value": self.null_value,
            "alternative": self.alternative,
            "statistic": self.statistic,
            **_draw_fields(self),
            "notes": self.notes(alpha),
        }

    def summary(self, alpha: float = 0.05) -> str:
        head = (
            f"H0: {self.term} = {self.null_value:g}   score statistic t = {self.statistic:.4f}   "
            f"bootstrap p = {self.p_value:.4f}"
        )
        return "\n".join([head, *self.notes(alpha)])


@dataclass
class WildScoreJointTest:
    """A wild score bootstrap test of several restrictions b_j = c_j at once (a Wald form)."""

    terms: list[str]
    null_values: list[float]
    statistic: float  # W = N' D^{-1} N, the cluster-robust score Wald statistic (chi2(q) form)
    p_value: float
    family: str
    weight_type: str
    n_draws: int
    enumerated: bool
    n_clusters: int
    smallest_p_value: float
    seed: int
    distribution: np.ndarray = field(repr=False)  # W* for every draw
    restricted_params: np.ndarray = field(repr=False)
    small_sample: bool = True
    tie_rule: str = "inclusive"
    resolution: float = 0.0
    version: str = __version__

    @property
    def restrictions(self) -> int:
        return len(self.terms)

    def notes(self, alpha: float = 0.05) -> list[str]:
        """Why this inference, and the limits of its p-value (as for one restriction)."""
        return [
            f"Joint test of {self.restrictions} restrictions: the cluster-robust score Wald "
            "statistic W = N' D^-1 N, bootstrapped as a quadratic form over the same draws.",
            *_bootstrap_notes(self, alpha),
        ]

    def as_record(self, alpha: float = 0.05) -> dict:
        """JSON-ready fields (the draw-by-draw distribution left out)."""
        return {
            "inference": "wild cluster score bootstrap, joint test",
            "terms": list(self.terms),
            "null_values": list(self.null_values),
            "restrictions": self.restrictions,
            "statistic": self.statistic,
            **_draw_fields(self),
            "notes": self.notes(alpha),
        }

    def summary(self, alpha: float = 0.05) -> str:
        hypothesis = ", ".join(
            f"{t} = {v:g}" for t, v in zip(self.terms, self.null_values, strict=True)
        )
        head = (
            f"H0: {hypothesis}   score Wald W = {self.statistic:.4f} ({self.restrictions} "
            f"restrictions)   bootstrap p = {self.p_value:.4f}"
        )
        return "\n".join([head, *self.notes(alpha)])


@dataclass
class ConfidenceSet:
    """A confidence set by test inversion: a union of intervals, possibly unbounded."""

    term: str
    alpha: float
    intervals: list[tuple[float, float]]  # -inf / inf mark unbounded ends
    bound_p_values: list[tuple[float, float, float]]  # (bound, p just inside, p just outside)
    estimate: float
    notes: list[str] = field(default_factory=list)
    # ends found where the statistic no longer moved with the null, and the way ("below",
    # "above") the set was extended past each: reported as unbounded there
    undetermined_ends: list[tuple[float, str]] = field(default_factory=list)

    @property
    def bounded(self) -> bool:
        return all(math.isfinite(a) and math.isfinite(b) for a, b in self.intervals)

    @property
    def disjoint(self) -> bool:
        return len(self.intervals) > 1

    def undetermined_notes(self) -> list[str]:
        """What the set says of each end it reports as unbounded because it was undetermined
        (not where it was found: that number is what rounding decided)."""
        return [
            f"An end of the set was found where the statistic moves by less than {FLAT_TAIL:g} "
            "of itself over a standard error of the null beyond it: where the set ends there is "
            f"numerically undetermined, so it is reported as unbounded {way} that end."
            for _bound, way in self.undetermined_ends
        ]

    def as_record(self) -> dict:
        """JSON-ready fields; an unbounded end is None."""

        def finite(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "term": self.term,
            "alpha": self.alpha,
            "estimate": self.estimate,
            "intervals": [[finite(low), finite(high)] for low, high in self.intervals],
            "bounded": self.bounded,
            "disjoint": self.disjoint,
            "bound_p_values": [list(map(float, row)) for row in self.bound_p_values],
            "undetermined_ends": [[float(bound), way] for bound, way in self.undetermined_ends],
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        pieces = " U ".join(f"[{a:.5g}, {b:.5g}]" for a, b in self.intervals) or "empty"
        text = f"{1 - self.alpha:.0%} confidence set for {self.term} by test inversion: {pieces}"
        if not self.bounded:
            text += " (unbounded: the data cannot rule out values this far from the estimate)"
        if self.disjoint:
            text += " (disjoint)"
        return "\n".join([text, *self.notes])


def _oriented(statistic, distribution: np.ndarray, alternative: str) -> tuple[np.ndarray, Any]:
    """The draws and the actual statistic as a p-value compares them: |t| two-sided, t
    ("greater") or -t ("less") one-sided; a failed (NaN) draw is -inf, so it never counts.
    ``statistic`` a number (``distribution`` B draws) or an m-vector (m x B draws, the actual
    statistic returned as an m x 1 column). A degenerate null's statistic is zero
    (``_rounding_zeroed``)."""
    draws = np.asarray(distribution, dtype=float)
    if np.ndim(statistic):
        statistic = np.asarray(statistic, dtype=float)[:, None]
    if alternative == "two-sided":
        draws, actual = np.abs(draws), abs(statistic)
    elif alternative in ("greater", "less"):
        sign = 1.0 if alternative == "greater" else -1.0
        draws, actual = sign * draws, sign * statistic
    else:
        raise InputError(
            "unknown alternative", value=alternative, expected="two-sided, greater or less"
        )
    return _rounding_zeroed(np.where(np.isnan(draws), -np.inf, draws), actual)


def _rounding_zeroed(draws: np.ndarray, actual) -> tuple[np.ndarray, Any]:
    """The rule for degenerate nulls: an actual statistic below ZERO_STATISTIC in absolute
    value is rounding noise and counts as zero, and so does every draw below it at that null
    (``draws`` a fresh array: changed in place). Such a null is the estimate itself, to within
    1e-8 standard errors (t moves about one unit per standard error of the null): there the
    scores sum to zero up to rounding, so t is a ratio of rounding errors whose value, and
    whether the constant draws (which tie it exactly: t(c 1) = sign(c) t(1)) compare as ties,
    depended on the order of the sums. Zeroed, the draws that tie it in exact arithmetic tie
    it here: p = 1 under the inclusive rule, the share of draws with |t*| >= ZERO_STATISTIC
    under the strict one. At every other null nothing changes (a draw below ZERO_STATISTIC
    is below the actual statistic either way). Applied wherever p is computed
    (``bootstrap_p_value``, ``_p_values``, ``_p_values_halved``, ``draw_excesses``), so one null
    gives one p-value on every path."""
    small = np.abs(actual) < ZERO_STATISTIC
    if not np.any(small):
        return draws, actual
    if np.ndim(actual):  # m x 1: the rows of the degenerate nulls
        rows = np.flatnonzero(small[:, 0])
        block = draws[rows]
        block[np.abs(block) < ZERO_STATISTIC] = 0.0
        draws[rows] = block
        return draws, np.where(small, 0.0, actual)
    draws[np.abs(draws) < ZERO_STATISTIC] = 0.0
    return draws, 0.0


def _orientation(alternative: str) -> int:
    """``wild_kernels``' code of an alternative (the comparison ``_oriented`` makes)."""
    codes = {"two-sided": TWO_SIDED, "greater": GREATER, "less": LESS}
    if alternative not in codes:
        raise InputError(
            "unknown alternative", value=alternative, expected="two-sided, greater or less"
        )
    return codes[alternative]


def _p_values(
    statistic: np.ndarray, distribution: np.ndarray, tie_rule: str, alternative: str
) -> np.ndarray:
    """``WildScoreBootstrap.bootstrap_p_value`` of m statistics at once (m x B draws, a row
    each): the same counts over the same comparisons; NaN where a statistic is not finite."""
    draws, actual = _oriented(statistic, distribution, alternative)
    slack = TIE_TOLERANCE * np.abs(actual)
    with np.errstate(invalid="ignore"):
        if tie_rule == "strict":
            p = np.mean(draws > actual + slack, axis=1)
        else:
            p = np.mean(draws >= actual - slack, axis=1)
    p[~np.isfinite(np.asarray(statistic, dtype=float))] = np.nan
    return p


def _p_values_halved(
    statistic: np.ndarray, half: np.ndarray, tie_rule: str, alternative: str
) -> np.ndarray:
    """``_p_values`` over the enumerated draws [v, -v] from the statistics of half of them
    (m x B/2, t(-v) = -t(v)): the draws -v count where -t(v) passes the same comparison, so
    the count is the full one, decided draw by draw on the same numbers (two-sided: |t(-v)| =
    |t(v)|, twice the half's count), without building the other half."""
    oriented, actual = _oriented(statistic, half, alternative)
    slack = TIE_TOLERANCE * np.abs(actual)
    threshold = actual + slack if tie_rule == "strict" else actual - slack

    def count(draws):
        with np.errstate(invalid="ignore"):
            passed = draws > threshold if tie_rule == "strict" else draws >= threshold
        return np.count_nonzero(passed, axis=1)

    if alternative == "two-sided":
        total = 2 * count(oriented)
    else:  # the negated half, oriented as the draws -v are
        total = count(oriented) + count(_oriented(statistic, np.negative(half), alternative)[0])
    p = total / (2 * half.shape[1])
    p[~np.isfinite(np.asarray(statistic, dtype=float))] = np.nan
    return p


class _Excesses:
    """Each null's draw excesses over its statistic, a row per null, computed when asked
    (``excesses[j]``): test inversion reads them at its brackets' ends only. A row's draws are
    ``statistics(scores)`` of its null's column of partialled cluster scores, made when the row
    is asked for (the p-values were counted without them: ``score_counts``), its excesses in one
    compiled pass (``wild_kernels.draw_excesses``, which says how a draw's excess is made)."""

    def __init__(
        self, statistics, scores, draws: Callable, size: int, halved: bool, tie_rule: str,
        alternative: str,
    ):  # fmt: skip
        """``statistics`` (m), ``scores`` (G x m: ``draws`` turns a null's column, as a G x 1
        matrix, into its row of draws), ``size`` draws a row (both halves where ``halved``)."""
        self.statistics, self.scores, self.draws, self.size = statistics, scores, draws, size
        self.halved, self.tie_rule, self.alternative = halved, tie_rule, alternative

    def __len__(self) -> int:
        return len(self.statistics)

    def __getitem__(self, j):
        if not np.isscalar(j):  # the rows of a mask or index array, as another _Excesses
            return _Excesses(
                self.statistics[j], self.scores[:, j], self.draws, self.size, self.halved,
                self.tie_rule, self.alternative,
            )  # fmt: skip
        statistic = float(self.statistics[j])
        if not math.isfinite(statistic):  # no statistic: no excess (NaN)
            return np.full(self.size, np.nan)
        distribution = self.draws(self.scores[:, [j]])[0]
        excess = np.empty(self.size)
        rule = (
            statistic, _orientation(self.alternative), self.tie_rule == "strict",
            ZERO_STATISTIC, TIE_TOLERANCE,
        )  # fmt: skip
        if not self.halved:
            return draw_excesses(distribution, *rule, excess)
        half = distribution.size
        draw_excesses(distribution, *rule, excess[:half])
        if self.alternative == "two-sided":
            # |-t| = |t| and every step of ``draw_excesses`` reads a draw's |t| alone: the negated
            # half's excesses are the same numbers, not made twice
            excess[half:] = excess[:half]
        else:
            draw_excesses(np.negative(distribution), *rule, excess[half:])
        return excess


def _most_draws(alpha: float, n: int) -> int:
    """The most of n draws that may count with p = count / n <= alpha (as floats compare)."""
    most = math.floor(alpha * n)
    while most + 1 <= n and (most + 1) / n <= alpha:
        most += 1
    while most >= 0 and most / n > alpha:
        most -= 1
    return most


def _predicted_bound(
    inside: np.ndarray,
    outside: np.ndarray,
    alpha: float,
    others: Sequence[np.ndarray] = (),
    places: Sequence[float] = (),
) -> tuple[float, float]:
    """Where between a bracket's accepted end (0) and its rejected end (1) p crosses alpha, if
    every draw's excess over the actual statistic (``draw_excesses``) moves linearly in between:
    each draw that counts at one end and not at the other changes the count where its line
    crosses zero, and the bound is where the count first falls to the most that p <= alpha
    allows. A draw's excess is smooth in the null where the count (p) steps, so the guess is
    good to the square of the bracket's width. NaN where the ends give no guess. With ``others``
    (other nulls' excesses, at ``places`` in the same units, outside [0, 1]) each draw's
    crossing is also found on the polynomial through all of them (``_curved_crossings``): a
    guess good to a higher power of the width. Returns (the curved guess, the linear one),
    the linear one twice without ``others``."""
    if inside is None or outside is None or np.isnan(inside).any() or np.isnan(outside).any():
        return math.nan, math.nan
    counted_in, counted_out = inside >= 0, outside >= 0
    count = int(counted_in.sum())
    most = _most_draws(alpha, inside.size)
    if count <= most:
        return math.nan, math.nan
    changed = np.flatnonzero(counted_in != counted_out)
    a, b = inside[changed], outside[changed]
    with np.errstate(divide="ignore", invalid="ignore"):
        where = np.where(np.isfinite(a) & np.isfinite(b), a / (a - b), 0.5)
    steps = np.where(counted_in[changed], -1, 1)

    def first_below(crossings: np.ndarray) -> float:
        order = np.argsort(crossings, kind="stable")
        below = np.flatnonzero(count + np.cumsum(steps[order]) <= most)
        return float(crossings[order][below[0]]) if below.size else math.nan

    linear = first_below(where)
    if not len(others):
        return linear, linear
    curved = _curved_crossings(where, a, b, [row[changed] for row in others], places)
    return first_below(curved), linear


def _curved_crossings(
    linear: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    others: Sequence[np.ndarray],
    places: Sequence[float],
) -> np.ndarray:
    """Where each draw's excess crosses zero between a bracket's ends (0 and 1, excesses ``a``
    and ``b``) on the polynomial through those and other nulls' (``others``, their excesses,
    at ``places`` outside [0, 1]): the linear crossings ``linear`` refined by Newton steps
    on the polynomial in Newton's form. Only a prediction (which nulls bisection evaluates
    ahead): a draw whose polynomial gives no crossing in [0, 1] (or a non-finite excess)
    keeps its linear one."""
    nodes = [0.0, 1.0, *places]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        table = [a, b, *others]  # divided differences, a column at a time
        coefficients = [a]
        for order in range(1, len(nodes)):
            table = [
                (table[i + 1] - table[i]) / (nodes[i + order] - nodes[i])
                for i in range(len(table) - 1)
            ]
            coefficients.append(table[0])
        where = linear.copy()
        for _ in range(CURVED_STEPS):
            value, slope = coefficients[-1], np.zeros_like(where)
            for order in range(len(nodes) - 2, -1, -1):
                slope = slope * (where - nodes[order]) + value
                value = value * (where - nodes[order]) + coefficients[order]
            where = where - value / slope
        usable = np.isfinite(where) & (where >= 0.0) & (where <= 1.0)
    return np.where(usable, where, linear)


def _halvings(
    low: float,
    high: float,
    p_low: float,
    p_high: float,
    tolerance: float,
    alpha: float,
    known: Callable[[float], float | None],
) -> tuple:
    """Bisection between ``low`` (accepted) and ``high`` (rejected) until the bracket is below
    ``tolerance``, in rounds of three halvings over the SECTIONS + 1 points of the round's
    bracket (the points as test inversion always computed them), reading p from ``known``.
    ("done", bound, p inside, p outside, inside end, outside end), or ("stopped", low, high,
    p_low, p_high) at the start of the round that needed a p-value ``known`` does not have
    (None)."""
    while abs(high - low) > tolerance:
        points = low + (high - low) * np.arange(SECTIONS + 1) / SECTIONS
        a, b, p_a, p_b = 0, SECTIONS, p_low, p_high
        while b - a > 1 and abs(points[b] - points[a]) > tolerance:
            middle = (a + b) // 2
            p = known(float(points[middle]))
            if p is None:
                return "stopped", low, high, p_low, p_high
            if not p <= alpha:
                a, p_a = middle, p
            else:
                b, p_b = middle, p
        low, high, p_low, p_high = float(points[a]), float(points[b]), p_a, p_b
    return "done", 0.5 * (low + high), p_low, p_high, low, high


def _interpolated_starts(
    kept: tuple | None, values: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Starts (free coefficients x values) of a batch of restricted fits at ``values``: the
    last batch's restricted estimates (``kept``: their nulls, their estimates, and where known
    the path's slopes db/dc there; separated and refitted ones left out) interpolated between
    the kept nulls on either side of each value: by the cubic Hermite polynomial of the two
    ends' estimates and slopes where both slopes are known (off by the fourth power of the
    kept nulls' distance), else linearly (off by its square): bisection's nulls lie inside
    brackets the last batch found. Beyond the kept range the nearest kept estimate,
    ``fallback`` (the unrestricted estimate) with none kept. Not extrapolated: beyond the
    grid's far end, +40 s.e., the fit may be separated, and a start there has a vanishing
    gradient that Newton takes for convergence."""
    if kept is None or kept[0].size == 0:
        return np.repeat(np.asarray(fallback, dtype=float)[:, None], values.size, axis=1)
    known, first = np.unique(kept[0], return_index=True)
    fits = kept[1][:, first]
    if known.size == 1:
        return np.repeat(fits, values.size, axis=1)
    right = np.clip(np.searchsorted(known, values), 1, known.size - 1)
    left = right - 1
    width = known[right] - known[left]
    weight = np.clip((values - known[left]) / width, 0.0, 1.0)
    starts = fits[:, left] * (1.0 - weight) + fits[:, right] * weight
    if len(kept) > 2:
        slopes = kept[2][:, first]
        cubic = np.isfinite(slopes[:, left]).all(axis=0) & np.isfinite(slopes[:, right]).all(axis=0)
        cubic &= (weight > 0.0) & (weight < 1.0)
        if cubic.any():
            t, h = weight[cubic], width[cubic]
            lo, hi = left[cubic], right[cubic]
            starts[:, cubic] = (
                fits[:, lo] * ((1.0 + 2.0 * t) * (1.0 - t) ** 2)
                + slopes[:, lo] * (h * t * (1.0 - t) ** 2)
                + fits[:, hi] * (t * t * (3.0 - 2.0 * t))
                + slopes[:, hi] * (h * t * t * (t - 1.0))
            )
    return starts


def _joined_starts(new: tuple, kept: tuple | None) -> tuple:
    """The restricted estimates kept as later batches' starts (``_interpolated_starts``): this
    batch's (nulls, estimates; slopes unknown until ``_keep_slopes``) first, then the ones
    kept before (a null found again is read from this batch: ``np.unique`` keeps the first)."""
    slopes = np.full(new[1].shape, np.nan)
    if kept is None:
        return (new[0], new[1], slopes)
    old_slopes = kept[2] if len(kept) > 2 else np.full(kept[1].shape, np.nan)
    return (
        np.concatenate([new[0], kept[0]]),
        np.concatenate([new[1], kept[1]], axis=1),
        np.concatenate([slopes, old_slopes], axis=1),
    )


def _side_by_side(searches: list, evaluate: Callable) -> list:
    """Run generators that each yield a round of null values and take back their (p-values,
    statistics, excess rows): every round's nulls of all that still run are evaluated together
    by ``evaluate(points)`` (one batched solve: p, t, excess), and each generator is sent its
    own slice. Their return values, in order."""
    results: list = [None] * len(searches)
    asked: dict[int, np.ndarray] = {}

    def advance(index: int, sent=None) -> None:
        try:
            asked[index] = searches[index].send(sent)
        except StopIteration as stop:
            results[index] = stop.value

    for index in range(len(searches)):
        advance(index)
    while asked:
        order, asked_now = list(asked), dict(asked)
        asked.clear()
        points = np.concatenate([asked_now[index] for index in order])
        sizes = [len(asked_now[index]) for index in order]
        p_new, t_new, excess = evaluate(points)
        first = 0
        for index, size in zip(order, sizes, strict=True):
            rows = functools.partial(_shifted_row, excess, first)
            advance(index, (p_new[first : first + size], t_new[first : first + size], rows))
            first += size
    return results


def _known_bracket(found: dict, low: float, high: float, alpha: float) -> tuple[float, float]:
    """The narrowest bracket inside [low (accepted), high (rejected)] that the p-values
    ``found`` already give: from the accepted end, the last null accepted before the first
    rejected one, and that one."""
    inside = sorted(
        (point for point in found if min(low, high) <= point <= max(low, high)),
        key=lambda point: abs(point - low),
    )
    inner = low
    for point in inside:
        if found[point] <= alpha:
            return inner, point
        inner = point
    return low, high


def _nearest_outside(rows: dict, low: float, high: float, count: int) -> list[float]:
    """The ``count`` nulls nearest to the bracket [low, high] (either order) outside it among
    ``rows``' keys."""
    lower, upper = min(low, high), max(low, high)
    outside = [point for point in rows if point < lower or point > upper]
    outside.sort(key=lambda point: lower - point if point < lower else point - upper)
    return outside[:count]


def _shifted_row(excess, first: int, index: int):
    """Row ``first + index`` of ``excess`` (a generator's own slice of a shared batch)."""
    return excess[first + index]


def _information_positions(p: int, where: np.ndarray) -> np.ndarray:
    """Where entry (j, k) of a p x p information sits among the products kept by
    ``WildScoreBootstrap._whole_products`` (``where``: each pair's product's column)."""
    return where[_gather_positions(p)]


def _usable_start(start: Any, p: int) -> np.ndarray | None:
    """``start`` as p finite floats (the unrestricted fit's start), else None (from zero)."""
    if start is None:
        return None
    found = np.asarray(start, dtype=float).ravel()
    return found if found.size == p and np.isfinite(found).all() else None


def _pivot_columns(restrictions: np.ndarray) -> np.ndarray:
    """The q columns a restriction R b = r (q x p) is solved for: the selected columns when
    every row selects one coefficient (R_J = I, R_F = 0 exactly), the column of the largest
    |R_j| for a single row, else the first q pivots of a column-pivoted QR (R_J well
    conditioned)."""
    R = restrictions
    nonzero = R != 0.0
    if (nonzero.sum(axis=1) == 1).all() and (R[nonzero] == 1.0).all():
        columns = np.argmax(nonzero, axis=1)
        if np.unique(columns).size == columns.size:
            return columns
    if R.shape[0] == 1:
        return np.array([int(np.argmax(np.abs(R[0])))])
    from scipy.linalg import qr

    return np.sort(qr(R, pivoting=True, mode="r")[1][: R.shape[0]])


class WildScoreBootstrap:
    """Wild cluster score bootstrap (Kline and Santos) of a logit or probit, as ``boottest``.

    Parameters
    ----------
    X : numpy.ndarray
        The design, n x p (``WildScoreBootstrap.from_fit(fit, data)`` builds it from a fit).
    y : numpy.ndarray
        The 0/1 outcome.
    clusters : numpy.ndarray
        The cluster of every row (at least two clusters).
    family : {"logit", "probit"}, default "logit"
    names : sequence of str, optional
        Names of the columns of ``X`` (default x0, x1, ...).
    weights, offset : numpy.ndarray, optional
        Sampling weights and an offset, one value per row.
    draws : int, default 9999
        Bootstrap draws B; when 2^G (Rademacher) or 6^G (Webb) is not above B every draw is
        enumerated once instead, so p-values are exact.
    weight_type : {"webb", "rademacher"}, optional
        Default Webb's six-point weights below 12 clusters, Rademacher from 12.
    seed : int, default 0
        Draws are keyed by (seed, cluster label), so they do not depend on the row order.
    convention : {"buzzpipe", "boottest"}, default "buzzpipe"
        "buzzpipe": G/(G-1) in the statistic, ties count (|t*| >= |t|); "boottest": Stata's
        boottest after ML (no factor unless its ``small`` option, |t*| > |t|).
    small_sample : bool, optional
        Override the convention's G/(G-1) factor.
    tie_rule : {"inclusive", "strict"}, optional
        Override the convention's tie rule.
    start : numpy.ndarray, optional
        Where the unrestricted fit starts (p values, e.g. the fit's own estimate, which the
        bootstrap then refines by a Newton step or two instead of about six from zero); the
        start changes where Newton stops by far less than its stop rule allows.

    Notes
    -----
    The draws are fixed at construction, so p(c) is a deterministic function of the hypothesised
    value c, which test inversion needs. ``test(term, c)`` gives a :class:`WildScoreTest` with its
    symmetric bootstrap p-value, ``joint_test(terms)`` a joint test, ``confidence_set(term)`` the
    set {c : p(c) > alpha} (possibly unbounded or disjoint). With G clusters the smallest
    attainable p-value is 2 / 2^G (Rademacher, enumerated): with five clusters a 5% test is
    impossible under Rademacher weights, which is why Webb's are the default there. See the
    module docstring for the algorithm.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> clustered = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                    firms, vcov={"cluster": "region"})
    >>> wild = bp.WildScoreBootstrap.from_fit(clustered, firms, draws=999, seed=1)
    >>> wild.n_clusters, wild.weight_type, wild.n_draws
    (5, 'webb', 999)
    >>> test = wild.test("breadth_international")
    >>> round(test.p_value, 3)
    0.037
    """

    # later batches of test inversion may take settled starts as estimates (``_fitted_scores``)
    _settles_starts = True

    @one_blas_thread
    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        clusters: np.ndarray,
        *,
        family: str = "logit",
        names: Sequence[str] | None = None,
        weights: np.ndarray | None = None,
        offset: np.ndarray | None = None,
        draws: int = 9999,
        weight_type: str | None = None,
        seed: int = 0,
        convention: str = "buzzpipe",
        small_sample: bool | None = None,
        tie_rule: str | None = None,
        start: np.ndarray | None = None,
    ) -> None:
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        n, p = self.X.shape
        self.weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        self.offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
        cluster_labels, self.cluster_codes = np.unique(np.asarray(clusters), return_inverse=True)
        self._configure(
            family=family,
            names=list(names) if names is not None else [f"x{j}" for j in range(p)],
            cluster_labels=cluster_labels,
            cluster_totals=np.bincount(
                self.cluster_codes, weights=self.weights, minlength=len(cluster_labels)
            ),
            draws=draws,
            weight_type=weight_type,
            seed=seed,
            convention=convention,
            small_sample=small_sample,
            tie_rule=tie_rule,
        )
        fitted = newton_batch(
            self.X, self.y, self.weights, family=family, offset=self.offset,
            start=_usable_start(start, p),
        )  # fmt: skip
        if start is not None and not (
            fitted.converged[0] and fitted.full_rank[0] and not fitted.separated[0]
        ):  # a start Newton cannot use (or that runs off to separation): from zero, as without
            fitted = newton_batch(self.X, self.y, self.weights, family=family, offset=self.offset)
        if not (fitted.converged[0] and fitted.full_rank[0]):
            raise EstimationError("the unrestricted fit did not converge")
        self.estimate = fitted.params[:, 0]
        self._restricted_start: dict[int, np.ndarray] = {}
        # the last batch of restricted fits per column (null values, estimates): starts
        self._restricted_starts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _configure(
        self,
        *,
        family: str,
        names: list[str],
        cluster_labels: np.ndarray,
        cluster_totals: np.ndarray,
        draws: int,
        weight_type: str | None,
        seed: int,
        convention: str,
        small_sample: bool | None,
        tie_rule: str | None,
    ) -> None:
        """Conventions, clusters and the fixed draws (everything but the data and the estimate)."""
        if convention not in CONVENTIONS:
            raise InputError(
                "unknown bootstrap convention", value=convention, expected="buzzpipe or boottest"
            )
        chosen = CONVENTIONS[convention]
        self.small_sample = chosen["small_sample"] if small_sample is None else bool(small_sample)
        self.tie_rule = chosen["tie_rule"] if tie_rule is None else tie_rule
        if self.tie_rule not in TIE_RULES:
            raise InputError("unknown tie rule", value=tie_rule, expected="inclusive or strict")
        if family not in BINARY_FAMILIES:
            raise InputError(
                "the wild score bootstrap is implemented for binary models",
                value=family,
                expected="logit or probit",
            )
        self.family = family
        self.names = names
        self.cluster_labels = cluster_labels
        self.n_clusters = G = len(self.cluster_labels)
        if G < 2:
            raise EstimationError("the wild cluster bootstrap needs at least 2 clusters")
        self.weight_type = weight_type or ("webb" if G < WEBB_BELOW_CLUSTERS else "rademacher")
        self.seed = seed
        self.enumerated = distinct_draws(G, self.weight_type) <= draws
        if self.enumerated:
            self.draws = enumerate_draws(G, self.weight_type)
        elif self.weight_type == "rademacher":
            self.draws = random_weights.rademacher_weights(seed, self.cluster_labels, draws)
        else:
            self.draws = random_weights.webb_weights(seed, self.cluster_labels, draws)
        self.n_draws = self.draws.shape[1]
        # the p-value's step: the constant vectors always tie t(1) when every draw is enumerated
        self.resolution = (
            constant_draws(self.weight_type) if self.enumerated else 1.0
        ) / self.n_draws
        strict_enumerated = self.enumerated and self.tie_rule == "strict"
        self.smallest_p_value = 0.0 if strict_enumerated else self.resolution
        self.cluster_share = cluster_totals / cluster_totals.sum()

    @classmethod
    def from_fit(
        cls, fit: Any, data: pd.DataFrame, *, cluster: str | None = None, **options: Any
    ) -> WildScoreBootstrap:
        """The bootstrap of a :class:`~buzzpipe.Fit`, its design rebuilt from ``data``.

        Parameters
        ----------
        fit : Fit
            A logit or probit fit (:func:`buzzpipe.fit`).
        data : pandas.DataFrame
            The data the model was fitted on.
        cluster : str, optional
            The cluster column (default the fit's own cluster variable).
        **options
            ``draws``, ``weight_type``, ``seed``.

        Returns
        -------
        WildScoreBootstrap
        """
        return wild_score_bootstrap(fit, data, cluster=cluster, **options)

    def column(self, term: str | int) -> int:
        """Position of a term, by name or index."""
        if isinstance(term, (int, np.integer)):
            return int(term)
        if term not in self.names:
            raise InputError(
                "no such term in the model", value=term, expected=", ".join(self.names)
            )
        return self.names.index(term)

    def restricted_fit(
        self, k: int | Sequence[int], null_value: float | Sequence[float]
    ) -> np.ndarray:
        """The full coefficient vector maximising the likelihood subject to b_k = null_value.

        ``k`` may be several columns (with as many values): all are fixed through the offset
        (:meth:`constrained_fit` with R selecting them), started at the last restricted
        estimate of the same columns.
        """
        columns = np.atleast_1d(np.asarray(k, dtype=np.intp))
        values = np.broadcast_to(np.asarray(null_value, dtype=float), columns.shape)
        key = tuple(columns.tolist())
        start = self._restricted_start.get(key)
        if start is None:
            start = self.estimate
        params = self.constrained_fit(np.eye(self.X.shape[1])[columns], values, start)
        self._restricted_start[key] = params
        return params

    def constrained_fit(
        self, restrictions: np.ndarray, targets: np.ndarray | Sequence[float], start: np.ndarray
    ) -> np.ndarray:
        """The coefficients maximising the likelihood subject to R b = r (R = ``restrictions``,
        q x p of rank q; r = ``targets``), imposed exactly by reparametrising, from ``start``
        (a full coefficient vector: its free entries start the fit).

        With J the q pivot columns (the restricted columns when every row of R selects one, the
        largest |R_j| for one row, column-pivoted QR otherwise), b_J = R_J^-1 (r - R_F b_F) for
        the free columns F, so the fit is over b_F with the design X_F - X_J R_J^-1 R_F (X_F
        itself when R_F = 0: a coefficient restriction b_k = c is the case R = e_k) and
        X_J R_J^-1 r added to the offset. The one owner of a restricted fit's solve: the
        batched Newton solve, then, where it stops short, a line-searched Newton fit
        (``_line_searched_fit``), else an EstimationError.
        """
        pivots, keep, shift, slope = _reparametrisation(restrictions, targets)
        params = np.empty(keep.size)
        params[pivots] = shift
        if not keep.any():  # every coefficient is fixed: nothing left to fit
            return params
        free = self._reparametrised_fit(
            pivots, keep, shift, slope, np.asarray(start, dtype=float)[keep]
        )
        if free is None:
            fixed = ", ".join(
                f"{self.names[j]} = {v:g}" for j, v in zip(pivots, shift, strict=True)
            )
            what = (
                f"restricted fit with {fixed}"
                if not slope.any()
                else "fit under the linearised restriction"
            )
            raise EstimationError(f"the {what} did not converge")
        params[keep] = free
        params[pivots] = shift - np.array([row @ free for row in slope])
        return params

    def _reparametrised_fit(self, pivots, keep, shift, slope, start) -> np.ndarray | None:
        """The free coefficients b_F of :meth:`constrained_fit` (``None`` where the fit does not
        converge): the design X_F - X_J slope, X_J shift added to the offset."""
        design = self.X[:, keep]
        if slope.any():
            design = design - self.X[:, pivots] @ slope
        offset = self.offset + self.X[:, pivots] @ shift
        return self._free_fit(design, offset, start)

    def _free_fit(self, design: np.ndarray, offset: np.ndarray, start: np.ndarray):
        """The free coefficients of one restricted fit (``design``, the restriction in
        ``offset``): the batched Newton solve, else ``_line_searched_fit``; None if neither
        converges."""
        fitted = newton_batch(
            design, self.y, self.weights, family=self.family, offset=offset, start=start,
            max_iter=100,
        )  # fmt: skip
        if fitted.converged[0] and fitted.full_rank[0]:
            return fitted.params[:, 0]
        return self._line_searched_fit(design, offset, start)

    def _line_searched_fit(self, design, offset, start) -> np.ndarray | None:
        """One restricted fit by ``newton.newton`` (every step's log-likelihood checked, as the
        streamed and Dask engines fit), where the batched solve stopped short: its long early
        steps are taken unchecked and can reach a point whose Hessian is singular although the
        restricted maximum exists. The estimate, or ``None`` when this does not converge either.
        ``design`` is the restricted fit's (the free columns of X, or a reparametrised one)."""
        family = get_family(self.family)

        def sums(params):
            found = block_sums(family, params, design, self.y, self.weights, offset)
            return found.llf, found.gradient, found.hessian

        start = np.array(start, dtype=float)
        result = newton(family, [], start, tol=1e-10, max_iter=100, sums=sums)
        return result.params if result.converged else None

    def restricted_fits(self, k: int, null_values: Sequence[float]) -> np.ndarray:
        """p x m restricted estimates with b_k fixed at each of ``null_values``: one batched
        Newton solve (an offset column per null), each started where the last batch's
        restricted estimates put it (``_interpolated_starts``)."""
        values = np.asarray(null_values, dtype=float).ravel()
        keep = np.ones(self.X.shape[1], dtype=bool)
        keep[k] = False
        params = np.empty((self.X.shape[1], values.size))
        params[k] = values
        if not keep.any():
            return params
        kept = self._restricted_starts.get(k)
        start = _interpolated_starts(kept, values, self.estimate[keep])
        far = np.zeros(values.size, dtype=bool)
        if kept is None:  # the first batch (the grid): on the path's polynomial or tangent
            gain, far = self._tangent_starts(k, keep, values)
            start += gain
        params[keep], usable = self._fitted_from(k, keep, values, start)
        if (far & ~usable).any():  # a far null separated or stopped short from the tangent:
            start[:, far] = self.estimate[keep][:, None]  # the batch again, far ones as before
            params[keep], usable = self._fitted_from(k, keep, values, start)
        self._restricted_starts[k] = _joined_starts((values[usable], params[keep][:, usable]), kept)
        return params

    def _fitted_from(
        self, k: int, keep: np.ndarray, values: np.ndarray, start: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The free coefficients (free x m) of the restricted fits at ``values`` from ``start``
        (the batched Newton solve, a line-searched fit where it stops short), and which of them
        later batches may start from (neither separated nor refitted)."""
        design = self._free_design(k, keep)
        fitted = newton_batch(
            design,
            self.y,
            self.weights,
            family=self.family,
            offset=self.offset[:, None] + self.X[:, [k]] * values[None, :],
            start=start,
            tol=INVERSION_DECREMENT,
            max_iter=100,
            products=self._free_products(k, keep),
        )
        failed = ~(fitted.converged & fitted.full_rank)
        for j in np.flatnonzero(failed):
            offset = self.offset + self.X[:, k] * values[j]
            estimate = self._line_searched_fit(design, offset, start[:, j])
            if estimate is None:
                raise EstimationError(
                    f"the restricted fit with {self.names[k]} = {values[j]:g} did not converge"
                )
            fitted.params[:, j] = estimate
        return fitted.params, ~fitted.separated & ~failed

    def _fitted_scores(
        self, k: int, values: np.ndarray, slopes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The partialled cluster scores (G x m) of the restricted fits at ``values``, and which
        nulls are separated (``partialled_scores_at`` of ``restricted_fits``).

        A later batch of a column (bisection's nulls, each started on the cubic through the
        fits already found) first reads the scores at its starts, with each restricted fit's
        Newton decrement and step there (from the information the scores need anyway). A start
        whose decrement is below SETTLED_DECREMENT is taken as the estimate, its scores kept;
        one whose decrement is below INVERSION_DECREMENT takes that one Newton step, the step
        the batched solve would take from it before stopping, and is scored again there; the
        others (a decrement above, a singular H_FF, a row's fitted probability within
        ``_NEARLY_SATURATED`` of 0 or 1, where the batched solve flags separation) are fitted
        by the batched solve (``_fitted_from``) and scored again. Most of bisection's nulls
        then cost one information, and none a batched solve's bookkeeping."""
        kept = self._restricted_starts.get(k)
        if kept is None or not self._settles_starts or self.X.shape[1] == 1:
            return self.partialled_scores_at(k, self.restricted_fits(k, values), slopes)
        keep = np.ones(self.X.shape[1], dtype=bool)
        keep[k] = False
        params = np.empty((self.X.shape[1], values.size))
        params[k] = values
        params[keep] = start = _interpolated_starts(kept, values, self.estimate[keep])
        decrements, steps = np.full(values.size, np.nan), np.zeros(params.shape)
        sums, separated = self.partialled_scores_at(
            k, params, slopes, decrements=decrements, steps=steps
        )
        settled = decrements < SETTLED_DECREMENT
        stepped = ~settled & (decrements < INVERSION_DECREMENT)
        params[:, stepped] += steps[:, stepped]
        usable = np.ones(values.size, dtype=bool)
        fitted = np.flatnonzero(~settled & ~stepped)
        if fitted.size:
            params[np.ix_(keep, fitted)], usable[fitted] = self._fitted_from(
                k, keep, values[fitted], start[:, fitted]
            )
        again = np.flatnonzero(~settled)
        if again.size:
            scored_slopes = np.full((self.X.shape[1], again.size), np.nan)
            sums[:, again], separated[again] = self.partialled_scores_at(
                k, params[:, again], scored_slopes
            )
            slopes[:, again] = scored_slopes
        self._restricted_starts[k] = _joined_starts((values[usable], params[keep][:, usable]), kept)
        return sums, separated

    def _tangent_starts(
        self, k: int, keep: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """What the free coefficients' starts gain on the restricted estimates' path (free x
        values), and which values are beyond TANGENT_REACH (the grid's far nulls).

        Within TANGENT_REACH cluster-robust standard errors of the estimate (the grid's inner
        part): b_F(c) = b^_F + sum_j t_j (c - b^_k)^j, the path's Taylor polynomial at the
        estimate (``_path_terms``: for the logit to the fourth power, a start off by the fifth
        power of the distance, so most of the grid's inner nulls need no Newton step before
        the last; for the probit the tangent alone, b^_F - (c - b^_k) H_FF^-1 H_Fk). Farther
        out (+-12, 20, 40 s.e.) the tangent alone: there the path bends and a start on the
        polynomial can be a separated one whose vanishing gradient Newton takes for
        convergence, while the tangent's start, as the estimate's, is not (measured on
        norway2010's 18 grids: their 108 far nulls' Newton steps before the last 391 from the
        estimate, 256 from the tangent, all converged, none separated; the restricted
        estimates within 3.4e-10 and 2.1e-10 of fits iterated to 1e-20). Where a far null is
        not fitted cleanly from its tangent start (separated, or stopped short), the whole
        batch is fitted again with the far nulls started at the estimate, as before
        (``restricted_fits``): there the far statistics can be constant to rounding, and a
        set's far piece is then decided by the rounding of the fits as they were."""
        distance = values - self.estimate[k]
        near = np.abs(distance) <= TANGENT_REACH * math.sqrt(self._robust_vcov()[k, k])
        gain = np.zeros((int(keep.sum()), values.size))
        terms = self._path_terms(k, keep)
        if terms is None:
            return gain, np.zeros(values.size, dtype=bool)
        for power, term in enumerate(terms, 1):
            gain[:, near] += term[:, None] * distance[near] ** power
        gain[:, ~near] = terms[0][:, None] * distance[~near]
        return gain, ~near

    def _path_terms(self, k: int, keep: np.ndarray) -> list[np.ndarray] | None:
        """The Taylor coefficients t_1, t_2, ... (each over the free columns) of the restricted
        estimates' path b_F(c) in c - b^_k at the estimate; None where H_FF is singular.

        Along the path the free scores X_F' diag(w) (y - P(eta(c))) stay zero, with eta(c) =
        eta^ + sum_j a_j (c - b^_k)^j, a_1 = x_k + X_F t_1 and a_j = X_F t_j. The coefficient of
        (c - b^_k)^j in P(eta(c)) is f a_j + r_j, r_j made of the earlier a's and the logistic's
        derivatives at eta^ over their factorials (f = P (1 - P); P'' = f (1 - 2P),
        P''' = f (1 - 6P + 6P^2), P'''' = f (1 - 2P)(1 - 12P + 12P^2)), so H_FF t_j =
        -X_F' diag(w) r_j, H the information at the estimate (t_1 = -H_FF^-1 H_Fk, the tangent).
        Two products with the design a term. The logit to the fourth power; other families the
        tangent. Measured on norway2010's 18 coefficient grids (47 nulls each): Newton steps
        before the last 1,297 from the tangent, 990 to the square, 793 to the cube, 619 to the
        fourth power (the six far nulls, started at the estimate, take 380 of them)."""
        information = self._estimate_information()
        try:
            tangent = -np.linalg.solve(information[np.ix_(keep, keep)], information[keep, k])
        except np.linalg.LinAlgError:
            return None
        if self.family != "logit":
            return [tangent]
        factor = np.linalg.inv(information[np.ix_(keep, keep)])
        free = self._free_design(k, keep)
        prob = special.expit(self.X @ self.estimate + self.offset)
        density = self.weights * prob * (1.0 - prob)
        odd, spread = 1.0 - 2.0 * prob, prob * (1.0 - prob)
        second = density * odd / 2.0  # w P'' / 2!, w P''' / 3!, w P'''' / 4!
        third = density * (1.0 - 6.0 * spread) / 6.0
        fourth = density * odd * (1.0 - 12.0 * spread) / 24.0
        first_index = free @ tangent + self.X[:, k]

        def term(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = -factor @ (free.T @ rest)
            return found, free @ found

        squared, square_index = term(second * first_index**2)
        cubed, cube_index = term(2.0 * second * first_index * square_index + third * first_index**3)
        fourth_power, _ = term(
            second * (square_index**2 + 2.0 * first_index * cube_index)
            + 3.0 * third * first_index**2 * square_index
            + fourth * first_index**4
        )
        return [tangent, squared, cubed, fourth_power]

    def _estimate_information(self) -> np.ndarray:
        """The information X' diag(w h) X at the estimate (made once)."""
        found = self.__dict__.get("_information_kept")
        if found is None:
            eta = self.X @ self.estimate + self.offset
            _, _, curvature = binary_terms(eta, self.y, self.family, need_loglike=False)
            found = (self.X * (self.weights * curvature)[:, None]).T @ self.X
            self._information_kept = found
        return found

    def _free_design(self, k: int, keep: np.ndarray) -> np.ndarray:
        """The design without column k, copied once per column and kept (every batch of its
        restricted fits reads it) where the column products are kept too."""
        if not self._keeps_free_products(keep):
            return self.X[:, keep]
        kept = self.__dict__.setdefault("_kept_designs", {})
        if k not in kept:
            kept[k] = self.X[:, keep]
        return kept[k]

    def _keeps_free_products(self, keep: np.ndarray) -> bool:
        """Whether the design without one column (``keep``) and its column products are kept:
        the products take at most PRODUCTS_KEPT numbers."""
        return keeps_products(self.X.shape[0], int(keep.sum()))

    def _free_products(self, k: int, keep: np.ndarray):
        """The column products of the design without column k (``_column_products``), made
        once per column and kept for every batch of its restricted fits where they take at
        most PRODUCTS_KEPT numbers (None otherwise: ``newton_batch`` makes them per batch)."""
        if not self._keeps_free_products(keep):
            return None
        kept = self.__dict__.setdefault("_kept_products", {})
        if k not in kept:
            whole = self._whole_products()
            if whole is None:
                kept[k] = _column_products(self._free_design(k, keep), by_columns=True)
            else:  # the whole design's products without those of column k: the same numbers
                products, where = whole
                upper_j, upper_k = np.triu_indices(self.X.shape[1])
                free = where[(upper_j != k) & (upper_k != k)]
                kept_j, kept_k = np.triu_indices(int(keep.sum()))
                # column-major products: the free ones are whole rows of the transpose
                kept[k] = (np.take(products.T, free, axis=0).T, kept_j, kept_k)
        return kept[k]

    def _whole_products(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The whole design's column products (``_column_products``) that are not all zero,
        made once and kept where the n x p(p+1)/2 products take at most PRODUCTS_KEPT numbers
        (None otherwise), and where each pair's product sits among them (p(p+1)/2 positions in
        ``np.triu_indices`` order).

        The kept array is n x (D + 1), column by column: the D products not all zero (two
        levels of one factor never meet: 16 of norway2010's 136 are zero), then a column of
        zeros, where the pairs whose products are all zero point. An information is then one
        product with the first D columns (``_informations``), 12% fewer numbers, its zero
        entries zeros; the products of a design without column k are the columns its pairs
        point to (``_free_products``), the same numbers as before (a zero stands for any
        zero). Memory: at most one column more than the products (which are let go once it
        is made; both for a moment)."""
        if not keeps_products(*self.X.shape):
            return None
        if not hasattr(self, "_products"):
            products = _column_products(self.X, by_columns=True)[0]
            nonzero = np.flatnonzero(products.any(axis=0))
            kept = np.empty((nonzero.size + 1, self.X.shape[0]))
            np.take(products.T, nonzero, axis=0, out=kept[:-1])
            kept[-1] = 0.0
            where = np.full(products.shape[1], nonzero.size)
            where[nonzero] = np.arange(nonzero.size)
            self._products = (kept.T, where)
        return self._products

    def p_values(
        self, term: str | int, null_values: Sequence[float], alternative: str = "two-sided"
    ) -> np.ndarray:
        """p(c) at every c of ``null_values`` (their restricted fits batched): test inversion.
        NaN where the restricted fit at c is separated (``SeparatedNull``: no statistic)."""
        return self._inversion(self.column(term), null_values, alternative)[0]

    def _inversion(
        self, k: int, null_values: Sequence[float], alternative: str
    ) -> tuple[np.ndarray, np.ndarray, _Excesses]:
        """(p, t, excess) at every null value: the p-value, the statistic, and each draw's
        excess over it as the p-value counts them (``draw_excesses``; ``excess[j]`` a row per null,
        computed when asked: test inversion interpolates it between a bracket's two ends
        only); NaN where the restricted fit is separated. The restricted fits in one batched
        solve, the partialled scores and the statistics of every null together
        (``partialled_scores_at``, ``statistics`` on a G x m matrix)."""
        values = np.asarray(null_values, dtype=float).ravel()
        slopes = np.full((len(self.names), values.size), np.nan)
        cluster_scores, separated = self._fitted_scores(k, values, slopes)
        self._keep_slopes(k, values, slopes)
        return self._tests(cluster_scores, np.flatnonzero(~separated), alternative)

    def _keep_slopes(self, k: int, values: np.ndarray, slopes: np.ndarray) -> None:
        """Beside the restricted estimates kept as later batches' starts, the path's slopes
        at this batch's nulls (``partialled_scores_at``): starts between two nulls with slopes
        are interpolated by cubic Hermite. This batch's nulls come first among the kept."""
        kept = self._restricted_starts.get(k)
        if kept is None or len(kept) < 3:  # the streamed engines keep no slopes
            return
        keep = np.ones(slopes.shape[0], dtype=bool)
        keep[k] = False
        fresh = min(values.size, kept[0].size)
        chosen = np.isin(values, kept[0][:fresh])
        if int(chosen.sum()) == fresh and np.array_equal(values[chosen], kept[0][:fresh]):
            kept[2][:, :fresh] = slopes[np.ix_(keep, chosen)]

    def _tests(
        self, cluster_scores: np.ndarray, usable: np.ndarray, alternative: str
    ) -> tuple[np.ndarray, np.ndarray, _Excesses]:
        """(p, t, excess) of the nulls whose partialled cluster scores are the columns of
        ``cluster_scores`` (G x m), computed for the columns ``usable`` (NaN elsewhere): the
        statistics of a block of nulls together (``statistics`` on a G x m matrix), the
        p-values over half of the enumerated draws where they are enumerated."""
        m = cluster_scores.shape[1]
        pvalues = np.full(m, np.nan)
        statistics = np.full(m, np.nan)
        half = self._sign_half()  # t(-v) = -t(v) exactly: the other half of the draws by negation
        draws = self.draws if half is None else half
        if usable.size:
            scores = np.ascontiguousarray(cluster_scores[:, usable], dtype=float)
            statistic = self.statistics(scores, np.ones((self.n_clusters, 1)))[:, 0]
            counts = score_counts(
                scores, np.ascontiguousarray(draws, dtype=float),
                np.ascontiguousarray(self.cluster_share, dtype=float),
                float(self.variance_factor), statistic, _orientation(alternative),
                self.tie_rule == "strict", half is not None, ZERO_STATISTIC, TIE_TOLERANCE,
                np.empty(usable.size, dtype=np.int64),
            )  # fmt: skip
            # as _p_values (the share of draws) and _p_values_halved (of twice the half)
            found = counts / (draws.shape[1] * (1 if half is None else 2))
            found[~np.isfinite(statistic)] = np.nan
            pvalues[usable], statistics[usable] = found, statistic

        excess = _Excesses(
            statistics, cluster_scores, functools.partial(self.statistics, draws=draws),
            self.draws.shape[1], half is not None, self.tie_rule, alternative,
        )  # fmt: skip
        return pvalues, statistics, excess

    def _sign_half(self) -> np.ndarray | None:
        """The enumerated draws whose first cluster weight is positive: with every weight vector
        enumerated, each v has -v beside it, and t(-v) = -t(v) (numerator and recentred scores
        change sign, squares do not), so half the draws give the whole distribution as a
        multiset, which is all a p-value reads. ``None`` for drawn (not enumerated) weights."""
        if not self.enumerated:
            return None
        if not hasattr(self, "_half_draws"):
            self._half_draws = np.ascontiguousarray(self.draws[:, self.draws[0] > 0])
        return self._half_draws

    def _directions(
        self,
        information: np.ndarray,
        columns: Sequence[int],
        params: np.ndarray,
        gradients: np.ndarray | None = None,
    ) -> np.ndarray:
        """H^{-1} R' at ``params`` (R selects ``columns``, or R' is ``gradients``, p x q: a
        restriction's gradient); a ``SeparatedNull`` (an EstimationError) where H is singular:
        fitted probabilities of 0 or 1 on every row of a column, no score statistic there."""
        right = np.eye(len(params))[:, list(columns)] if gradients is None else gradients
        try:
            return np.linalg.solve(information, right)
        except np.linalg.LinAlgError:
            fixed = (
                "g(b) = 0"
                if gradients is not None
                else ", ".join(f"{self.names[j]} = {params[j]:g}" for j in columns)
            )
            raise SeparatedNull(
                f"the restricted fit with {fixed} is separated: its information is singular"
            ) from None

    def partialled_cluster_scores(self, k: int, params: np.ndarray) -> np.ndarray:
        """S_g: cluster sums of the scores at ``params`` projected on H^{-1} e_k (steps 2-4)."""
        return self.partialled_cluster_score_matrix([k], params)[:, 0]

    def partialled_cluster_score_matrix(
        self, columns: Sequence[int], params: np.ndarray, gradients: np.ndarray | None = None
    ) -> np.ndarray:
        """G x q matrix of cluster sums of the scores projected on H^{-1} R' (R selects columns,
        or R' is ``gradients``, p x q, the gradient of a restriction g(b) = 0 at ``params``)."""
        eta = self.X @ params + self.offset
        _, derivative, curvature = binary_terms(eta, self.y, self.family)
        information = (self.X * (self.weights * curvature)[:, None]).T @ self.X
        directions = self._directions(information, columns, params, gradients)
        projections = self.X @ directions
        sums = np.zeros((self.n_clusters, directions.shape[1]))
        weighted = np.broadcast_to((self.weights * derivative)[:, None], projections.shape)
        return self._cluster_sums(weighted, projections, np.arange(directions.shape[1]), sums)

    def partialled_scores_at(
        self,
        k: int,
        params: np.ndarray,
        slopes: np.ndarray | None = None,
        decrements: np.ndarray | None = None,
        steps: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``partialled_cluster_scores`` at every column of ``params`` (p x m): the G x m cluster
        sums, and which nulls are separated (a singular information; their column is NaN).
        The nulls a block of at most SCORES_BLOCK n x m entries: one product for the linear
        indices and one for the projections, the informations and their solves batched.
        ``slopes`` (p x m), where given, receives each restricted fit's path slope db/dc at its
        null c: H^{-1} e_k / (H^{-1} e_k)_k (the restricted fit's score condition
        H_FF db_F/dc + H_Fk = 0, by the partitioned inverse). ``decrements`` (m) and ``steps``
        (p x m), where given, receive the Newton decrement g_F' H_FF^{-1} g_F and step
        H_FF^{-1} g_F (row k left as it is) of each null's restricted fit at ``params`` (F the
        columns but k, g the score, H this information; ``_free_newton``): how far ``params``
        is from the restricted maximum (``_fitted_scores``)."""
        n, p = self.X.shape
        m = params.shape[1]
        sums = np.full((self.n_clusters, m), np.nan)
        separated = np.zeros(m, dtype=bool)
        unit = np.zeros((p, 1))
        unit[k] = 1.0
        step = max(1, SCORES_BLOCK // max(n, 1))
        for first in range(0, m, step):
            block = slice(first, min(first + step, m))
            width = block.stop - block.start
            eta = np.matmul(self.X, params[:, block], out=self._scratch("index", n, width))
            eta += self.offset[:, None]
            scratch = tuple(self._scratch(name, n, width) for name in SCRATCH_TERMS)
            _, derivative, curvature = binary_terms(
                eta, self.y[:, None], self.family, need_loglike=False,
                out=None if scratch[0] is None else scratch,
            )  # fmt: skip
            weighted = self._weighted(curvature)
            information = self._null_informations(weighted, curvature)
            try:
                directions = np.linalg.solve(
                    information, np.broadcast_to(unit, (len(information), p, 1))
                )
            except np.linalg.LinAlgError:  # one by one: which are singular
                directions = np.full((len(information), p, 1), np.nan)
                for j, matrix in enumerate(information):
                    try:
                        directions[j] = np.linalg.solve(matrix, unit)
                    except np.linalg.LinAlgError:
                        separated[first + j] = True
            if slopes is not None:
                slopes[:, block] = (directions[:, :, 0] / directions[:, k, :]).T
            found = np.full((self.n_clusters, information.shape[0]), np.nan)
            weighted_derivative = self._weighted(derivative)
            projections = self._scratch("projections", n, width)
            self._cluster_sums(
                weighted_derivative,
                np.matmul(self.X, directions[:, :, 0].T, out=projections),
                np.flatnonzero(~separated[block]),
                found,
            )
            sums[:, block] = found
            if decrements is not None:
                decrements[block], free_steps = self._free_newton(
                    k, eta, weighted_derivative, information
                )
                if steps is not None:
                    steps[np.arange(p) != k, block] = free_steps
        return sums, separated

    def _scratch(self, name: str, rows: int, columns: int) -> np.ndarray | None:
        """A rows x columns array (C order, contents undefined) for test inversion's n x m
        temporaries of one block of nulls, kept by name (and thread) on the bootstrap and
        reused by every later batch (a fresh array of that size costs its page faults each
        time: about 150 per 1,604 x 47 array), where it holds at most SCRATCH_KEPT numbers;
        None otherwise (the caller then makes a fresh one). Measured on norway2010's 21 sets:
        26,000 -> 7,600 page faults a round of them."""
        if rows * columns > SCRATCH_KEPT:
            return None
        kept = self.__dict__.setdefault("_scratch_kept", {})
        key = (threading.get_ident(), name)  # a thread's own (a user's threads may share one)
        found = kept.get(key)
        if found is None or found.size < rows * columns:
            found = kept[key] = np.empty(rows * columns)
        return found[: rows * columns].reshape(rows, columns)

    def _free_newton(
        self, k: int, eta: np.ndarray, weighted_derivative: np.ndarray, information: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The restricted fits' Newton decrements g_F' H_FF^{-1} g_F (m) and steps
        H_FF^{-1} g_F (free x m) from their linear indices (n x m), weighted score terms
        (n x m) and informations (m x p x p): the decrement NaN where H_FF is not of full rank
        (``_rank_and_inverse``'s rule, the batched solve's) or a row of positive weight has a
        fitted probability within ``_NEARLY_SATURATED`` of 0 or 1 (``partialled_scores_at``)."""
        keep = np.ones(self.X.shape[1], dtype=bool)
        keep[k] = False
        gradient = self._free_design(k, keep).T @ weighted_derivative  # free x m
        full_rank, inverse, _ = _rank_and_inverse(information[:, keep][:, :, keep])
        step = _times(inverse, gradient)
        decrement = np.einsum("pm,pm->m", step, gradient)
        farthest = _farthest_weighted(eta, self.weights[:, None], self.family)
        near_saturated = ~(fitted_probability(-farthest, self.family) >= _NEARLY_SATURATED)
        decrement[~full_rank | near_saturated] = np.nan
        return decrement, step

    def _weighted(self, terms: np.ndarray) -> np.ndarray:
        """``terms`` (n x m) times the rows' weights: ``terms`` itself where every weight is 1
        (no sampling weights), whose product would change no bit."""
        unit = self.__dict__.get("_unit_weights")
        if unit is None:
            unit = self._unit_weights = bool(np.all(self.weights == 1.0))
        return terms if unit else self.weights[:, None] * terms

    def _every_weight_positive(self) -> bool:
        """Whether every row has a positive weight (checked once)."""
        found = self.__dict__.get("_all_positive")
        if found is None:
            found = self._all_positive = bool(np.all(self.weights > 0))
        return found

    def _null_informations(self, weighted: np.ndarray, curvature: np.ndarray) -> np.ndarray:
        """m x p x p informations X' diag(column j of ``weighted``) X of test inversion's nulls:
        from the column products in one product (``_informations``), except a null with a
        row of positive weight whose curvature is below ``SATURATED_CURVATURE`` (a fitted
        probability within about that of 0 or 1: a restricted fit at or near separation, far
        out on the grid), whose information is its own product X' (X * weighted): there it is
        near singular, the rounding of the sum decides the statistic (constant to rounding far
        out; its sign decides a set's far piece, tests/study/test_study_sensitivity.py), and
        that rounding is kept as it was."""
        low = curvature < SATURATED_CURVATURE
        if self._every_weight_positive():  # every row counts: no mask (half the time)
            saturated = np.flatnonzero(low.any(axis=0))
        else:
            saturated = np.flatnonzero(low.any(axis=0, where=(self.weights > 0)[:, None]))
        if not saturated.size:
            return self._informations(weighted)
        information = np.empty((weighted.shape[1], *([self.X.shape[1]] * 2)))
        rest = np.setdiff1d(np.arange(weighted.shape[1]), saturated)
        if rest.size:
            information[rest] = self._informations(weighted[:, rest])
        for j in saturated:
            information[j] = (self.X * weighted[:, [j]]).T @ self.X
        return information

    def _cluster_sums(self, left, right, columns, out) -> np.ndarray:
        """Cluster sums of the products ``left * right`` (n x m each: the weighted score terms
        and the projections) for ``columns`` into ``out`` (G x m): each product added to its
        cluster's sum in row order, as ``np.bincount`` of a column of products summed them
        (``wild_kernels.cluster_products``: the same numbers, one pass)."""
        codes = self.__dict__.get("_codes")
        if codes is None:
            codes = self._codes = np.ascontiguousarray(self.cluster_codes, dtype=np.int64)
        return cluster_products(
            codes, np.ascontiguousarray(left), np.ascontiguousarray(right),
            np.ascontiguousarray(columns, dtype=np.int64), out,
        )  # fmt: skip

    @property
    def variance_factor(self) -> float:
        """G/(G-1) (Stata's cluster vce), or 1 without the small-sample factor (boottest, ML)."""
        G = self.n_clusters
        return G / (G - 1) if self.small_sample else 1.0

    def statistics(self, cluster_scores: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """t(v) for each column v of ``draws`` (step 5); ``cluster_scores`` a G-vector (t is a
        B-vector) or a G x m matrix, a column per null (t is m x B)."""
        if cluster_scores.ndim == 2:  # compiled: the sums over clusters in cluster order
            scores = np.ascontiguousarray(cluster_scores, dtype=float)
            draws = np.ascontiguousarray(draws, dtype=float)
            out = np.empty((scores.shape[1], draws.shape[1]))
            share = np.ascontiguousarray(self.cluster_share, dtype=float)
            return score_statistics(scores, draws, share, float(self.variance_factor), out)
        numerator = cluster_scores @ draws
        recentred = draws * cluster_scores[:, None] - self.cluster_share[:, None] * numerator
        denominator = self.variance_factor * np.einsum("gb,gb->b", recentred, recentred)
        with np.errstate(divide="ignore", invalid="ignore"):
            return numerator / np.sqrt(denominator)

    def wald_statistics(self, cluster_scores: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """W(v) = N(v)' D(v)^{-1} N(v) for each column v of ``draws`` (the joint test's step 5).

        ``cluster_scores`` is G x q; N(v) = sum_g v_g S_g and D(v) = G/(G-1) sum_g J_g J_g' with
        J_g(v) = v_g S_g - pi_g N(v), all B draws at once. With q = 1, W = t^2.
        """
        numerator = cluster_scores.T @ draws  # q x B
        recentred = (
            draws[:, None, :] * cluster_scores[:, :, None]
            - self.cluster_share[:, None, None] * numerator[None, :, :]
        )  # G x q x B
        middle = self.variance_factor * np.einsum("gqb,grb->bqr", recentred, recentred)
        right = numerator.T[:, :, None]
        try:
            solved = np.linalg.solve(middle, right)[:, :, 0]
        except np.linalg.LinAlgError:  # a draw with a singular D(v): its pseudo-inverse
            solved = (np.linalg.pinv(middle) @ right)[:, :, 0]
        return np.einsum("qb,bq->b", numerator, solved)

    @one_blas_thread
    def joint_test(
        self, terms: Sequence[str | int], null_values: float | Sequence[float] = 0.0
    ) -> WildScoreJointTest:
        """Joint test of b_j = c_j for every j in ``terms`` (Roodman et al. 2019, section 3.4).

        One restricted fit imposes all q restrictions; the partialled cluster scores S_g are
        q-vectors (H^{-1} R' projections) and the statistic is the cluster-robust score Wald
        W(1) = N' D^{-1} N, bootstrapped as a quadratic form over the same draws. p = share of
        draws with W* >= W (the tie convention on sqrt(W), as for one restriction).
        """
        columns = [self.column(term) for term in terms]
        if len(set(columns)) != len(columns) or not columns:
            raise InputError(
                "the terms of a joint test must be distinct", value=list(terms), expected="q >= 1"
            )
        q = len(columns)
        if q > self.n_clusters - 1:
            raise EstimationError(
                f"a joint test of {q} restrictions needs at least {q + 1} clusters: with "
                f"{self.n_clusters} the cluster-robust covariance of the scores has rank "
                f"{self.n_clusters - 1}"
            )
        values = np.broadcast_to(np.asarray(null_values, dtype=float), (q,)).copy()
        params = self.restricted_fit(columns, values)
        cluster_scores = self.partialled_cluster_score_matrix(columns, params)
        statistic = float(self.wald_statistics(cluster_scores, np.ones((self.n_clusters, 1)))[0])
        distribution = self.wald_statistics(cluster_scores, self.draws)
        p_value = self.bootstrap_p_value(
            math.sqrt(max(statistic, 0.0)),
            np.sqrt(np.clip(distribution, 0.0, None)),
            self.tie_rule,
        )
        return WildScoreJointTest(
            terms=[self.names[j] for j in columns],
            null_values=values.tolist(),
            statistic=statistic,
            p_value=p_value,
            **self._draw_settings(),
            distribution=distribution,
            restricted_params=params,
        )

    def _draw_settings(self) -> dict:
        """How this bootstrap draws: the fields every test result carries."""
        return {
            "family": self.family,
            "weight_type": self.weight_type,
            "n_draws": self.n_draws,
            "enumerated": self.enumerated,
            "n_clusters": self.n_clusters,
            "smallest_p_value": self.smallest_p_value,
            "seed": self.seed,
            "small_sample": self.small_sample,
            "tie_rule": self.tie_rule,
            "resolution": self.resolution,
        }

    @one_blas_thread
    def test(
        self, term: str | int, null_value: float = 0.0, alternative: str = "two-sided"
    ) -> WildScoreTest:
        """Test b_term = null_value: symmetric (two-sided) bootstrap p-value, or one-sided
        ("greater": share of draws with t* >= t; "less": t* <= t), same tie rule."""
        k = self.column(term)
        params = self.restricted_fit(k, null_value)
        cluster_scores = self.partialled_cluster_scores(k, params)
        return self._score_test(self.names[k], null_value, params, cluster_scores, alternative)

    def _score_test(
        self,
        name: str,
        null_value: float,
        params: np.ndarray,
        cluster_scores: np.ndarray,
        alternative: str,
        **extra: Any,
    ) -> WildScoreTest:
        """The test of one restriction from its partialled cluster scores at the restricted
        estimate ``params``: t, its distribution over the draws and the p-value under the tie
        rule (``extra``: further fields of the record, such as ``rounds``)."""
        statistic = float(self.statistics(cluster_scores, np.ones((self.n_clusters, 1)))[0])
        distribution = self.statistics(cluster_scores, self.draws)
        p_value = self.bootstrap_p_value(statistic, distribution, self.tie_rule, alternative)
        return WildScoreTest(
            term=name,
            null_value=float(null_value),
            statistic=statistic,
            p_value=p_value,
            **self._draw_settings(),
            distribution=distribution,
            restricted_params=params,
            alternative=alternative,
            **extra,
        )

    def linearly_restricted_fit(
        self, gradient: np.ndarray, target: float, start: np.ndarray
    ) -> np.ndarray:
        """The coefficients maximising the likelihood subject to R b = r (one row R =
        ``gradient``, r = ``target``): :meth:`constrained_fit` of that row (pivot: the column
        of the largest |R_j|)."""
        return self.constrained_fit(np.asarray(gradient, dtype=float)[None, :], [target], start)

    def nonlinearly_restricted_fit(
        self, restriction: Any, *, tol: float = 1e-10, max_rounds: int = 50
    ) -> tuple[np.ndarray, int]:
        """The coefficients maximising the likelihood subject to g(b) = 0, and the rounds taken.

        ``restriction(b)`` returns g(b) and its gradient R(b) (a p-vector). From the unrestricted
        estimate, each round imposes the restriction linearised at the current b_k,
        R(b_k) b = R(b_k) b_k - g(b_k), exactly (:meth:`linearly_restricted_fit`), until b moves
        by less than ``tol`` (relative to 1 + max |b|). A fixed point satisfies g(b) = 0 and the
        score is a multiple of R(b): the first-order conditions of the restricted maximum. A
        linear g converges in one round (the second only confirms it).
        """
        params = np.array(self.estimate, dtype=float)
        for rounds in range(1, max_rounds + 1):
            value, gradient = restriction(params)
            gradient = np.asarray(gradient, dtype=float)
            restricted = self.linearly_restricted_fit(
                gradient, float(gradient @ params) - float(value), params
            )
            moved = float(np.max(np.abs(restricted - params)))
            params = restricted
            if moved <= tol * (1.0 + float(np.max(np.abs(params)))):
                return params, rounds
        raise EstimationError(
            f"the fit under the restriction g(b) = 0 did not settle in {max_rounds} rounds"
        )

    @one_blas_thread
    def restriction_test(
        self,
        restriction: Any,
        name: str = "g(b)",
        alternative: str = "two-sided",
        null_value: float = 0.0,
    ) -> WildScoreTest:
        """Test one smooth restriction g(b) = 0 (``restriction(b)`` gives g(b) and its
        gradient; g(b) = ``null_value`` when that is given) by the wild cluster score bootstrap,
        the null imposed by the restricted fit (:meth:`nonlinearly_restricted_fit`).

        With b~ the restricted estimate and R = dg/db at b~, the scores are projected on
        H^{-1} R' (for g(b) = b_k - c this is the coefficient test's H^{-1} e_k, and the test is
        :meth:`test`'s): N(1) = R H^{-1} sum_i s_i(b~) is the one-step (linearised) estimate of
        g, g(b^) ~ g(b~) + R H^{-1} S = N(1) under the null, and D(1) its cluster-robust
        variance, so t(1) = N(1) / sqrt(D(1)) is the delta-method t of g in its score form
        (evaluated where the null holds). The draws are this bootstrap's, the same weight
        vectors as every other test made from it; the p-value and tie rule as :meth:`test`.
        """
        if null_value != 0.0:
            restriction = _shifted(restriction, null_value)
        params, rounds = self.nonlinearly_restricted_fit(restriction)
        gradient = np.asarray(restriction(params)[1], dtype=float)
        cluster_scores = self.partialled_cluster_score_matrix([], params, gradient[:, None])[:, 0]
        return self._score_test(
            name, null_value, params, cluster_scores, alternative, rounds=rounds
        )

    @one_blas_thread
    def restricted_fits_under(
        self,
        restriction: Any,
        null_values: Sequence[float],
        starts: np.ndarray | None = None,
        *,
        tol: float = 1e-10,
        slopes: np.ndarray | None = None,
        settled: dict | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """p x m coefficients maximising the likelihood subject to g(b) = c for every c of
        ``null_values`` at once, and why any has none (m codes: ``FIT_FOUND``,
        ``FIT_DIVERGES``, ``FIT_UNSETTLED``). ``slopes`` (p x m), where given, receives each
        fit's derivative db/dc from its last step (``_lagrange_step``).

        Each step is a Newton step of every fit on its Lagrangian l(b) - lambda (g(b) - c)
        (sequential quadratic programming with the restriction's curvature): with H the
        information, W = H + lambda G (G g's Hessian, lambda the multiplier of the fit's last
        step; the first step takes lambda from the same system with W = H),
        delta = W^{-1}(s - lambda' R') and lambda' making g(b) + R delta = c. Where W is not
        positive definite the step is the one with H alone (without the curvature). A step
        moves no linear index by more than ``RESTRICTION_REACH`` and is kept where it raises
        the exact-penalty merit l(b) - penalty |g(b) - c| enough (Armijo, ``MERIT_RISE``), else
        halved from the same point: the steps climb from the start towards a maximum, not to
        any point where the first-order conditions hold. The informations of all fits come
        from one product with the column products (``batched_newton._hessians``), g with its
        gradient and Hessian for all fits at once (``_restriction_second_order``). A fit stops
        when b moves by less than ``tol`` (relative to 1 + max |b|): its fixed point has
        g(b) = c and a score that is a multiple of R(b), the first-order conditions
        :meth:`nonlinearly_restricted_fit` reaches by whole restricted fits, whatever the
        curvature used on the way. Where a fit exists the steps settle it quadratically (far
        from the estimate the restricted likelihood may have more than one maximum: the one
        reached is the one the steps climb to from ``starts``). A fit reaching a linear index
        beyond ``SEPARATED_INDEX`` or a singular information runs into separation
        (``FIT_DIVERGES``); one still moving after ``RESTRICTION_STEPS`` steps otherwise, or
        whose step was halved below ``SMALLEST_SHARE``, is ``FIT_UNSETTLED``. ``starts``: p x m
        (default the unrestricted estimate).

        ``settled``, where given (a dict), takes the fits found at their starts: a fit whose
        first step's Lagrangian decrement delta' W delta (W as the step used it) is below
        ``SETTLED_RESTRICTION`` is taken as found where it started (not moved), and
        ``settled`` receives their positions (``"columns"``), informations and g's gradients
        there, from which test inversion reads their scores (``_restriction_inversion``)."""
        values = np.asarray(null_values, dtype=float).ravel()
        p, m = len(self.names), values.size
        params = (
            np.repeat(self.estimate[:, None], m, axis=1)
            if starts is None
            else np.array(starts, dtype=float).reshape(p, m)
        )
        reach = self._column_reach()
        active = np.ones(m, dtype=bool)
        outcome = np.full(m, FIT_UNSETTLED, dtype=np.int8)
        multiplier = np.full(m, np.nan)  # lambda of each fit's last step
        kept_curvature = np.zeros((m, p, p))  # g's Hessian where each fit's last long step ended
        fresh = np.ones(m, dtype=bool)  # whether it is made again at the next evaluation
        penalty = np.zeros(m)  # the merit's weight on |g(b) - c|: above every |lambda| seen
        # the point each step left from, its log-likelihood and |g - c|, the step, the share of
        # it taken (the point evaluated is base + share step) and the merit's slope along it
        base = params.copy()
        base_loglike, base_excess = np.zeros(m), np.zeros(m)
        direction, share, slope = np.zeros((p, m)), np.zeros(m), np.zeros(m)
        for steps_taken in range(RESTRICTION_STEPS):
            columns = np.flatnonzero(active)
            if not columns.size:
                break
            loglike, largest, score, information = self._scores_and_informations(
                params[:, columns], with_loglike=True
            )
            if fresh[columns].any():  # g's Hessian again after a long step (or at the start)
                value, gradient, curvature = _restriction_second_order(
                    restriction, params[:, columns]
                )
                kept_curvature[columns] = curvature
            else:  # short steps only: the Hessian of g where the last long step ended
                value, gradient = _restriction_many(restriction, params[:, columns])
                curvature = kept_curvature[columns]
            excess = value - values[columns]
            # a step taken: kept where the merit l - penalty |g - c| rose enough (Armijo),
            # else halved from the same point (that point's sums are made again next time)
            tried = share[columns] > 0
            with np.errstate(invalid="ignore"):
                rose = (loglike - penalty[columns] * np.abs(excess)) >= (
                    base_loglike[columns]
                    - penalty[columns] * base_excess[columns]
                    + MERIT_RISE * share[columns] * slope[columns]
                    - MERIT_ROUNDING * (1.0 + np.abs(base_loglike[columns]))
                )
            back = tried & ~rose
            if back.any():
                halved = columns[back]
                share[halved] *= 0.5
                params[:, halved] = base[:, halved] + share[halved] * direction[:, halved]
                outcome[halved[share[halved] < SMALLEST_SHARE]] = FIT_UNSETTLED
                active[halved[share[halved] < SMALLEST_SHARE]] = False
                keep = ~back
                columns, loglike, score, information = (
                    columns[keep],
                    loglike[keep],
                    score[:, keep],
                    information[keep],
                )
                largest = largest[keep]
                value, gradient, curvature, excess = (
                    value[keep],
                    gradient[:, keep],
                    curvature[keep],
                    excess[keep],
                )
                if not columns.size:
                    continue
            right = np.stack([score.T, gradient.T], axis=2)
            first = np.isnan(multiplier[columns])
            if first.any():  # the first step's multiplier: from the information alone
                multiplier[columns[first]] = _lagrange_step(
                    information[first], right[first], excess[first]
                )[1]
            lagrangian = information + multiplier[columns][:, None, None] * curvature
            step, multiplier_new, finite, path = _lagrange_step(lagrangian, right, excess)
            plain = ~finite
            if plain.any():  # W not positive definite: the step without curvature
                step[plain], multiplier_new[plain], finite[plain], path[plain] = _lagrange_step(
                    information[plain], right[plain], excess[plain]
                )
            if slopes is not None:
                slopes[:, columns] = path.T
            multiplier[columns] = multiplier_new
            with np.errstate(divide="ignore", invalid="ignore"):
                cut = np.minimum(1.0, RESTRICTION_REACH / (np.abs(step) @ reach))
            finite &= np.isfinite(step).all(axis=1) & (largest <= SEPARATED_INDEX)
            outcome[columns[~finite]] = FIT_DIVERGES
            active[columns[~finite]] = False
            if settled is not None and steps_taken == 0:  # fits found where they start
                used = np.where(plain[:, None, None], information, lagrangian)
                decrement = np.einsum("kp,kpq,kq->k", step, used, step)
                at_start = finite & (decrement < SETTLED_RESTRICTION)
                settled["columns"] = columns[at_start]
                settled["information"] = information[at_start]
                settled["gradient"] = gradient[:, at_start]
                outcome[columns[at_start]] = FIT_FOUND
                active[columns[at_start]] = False
                finite = finite & ~at_start
            keep = finite
            columns, step, cut = columns[keep], step[keep], cut[keep]
            score, excess, loglike = score[:, keep], excess[keep], loglike[keep]
            multiplier_new = multiplier_new[keep]
            # the exact penalty's weight above |lambda|: the step then climbs the merit, its
            # slope s'delta + penalty |g - c| > 0 where W is positive definite
            penalty[columns] = np.maximum(penalty[columns], MERIT_MARGIN * np.abs(multiplier_new))
            base[:, columns] = params[:, columns]
            base_loglike[columns], base_excess[columns] = loglike, np.abs(excess)
            direction[:, columns] = step.T
            slope[columns] = np.einsum("kp,pk->k", step, score) + penalty[columns] * np.abs(excess)
            share[columns] = cut
            taken = step * cut[:, None]
            params[:, columns] += taken.T
            moved = np.abs(taken).max(axis=1)
            size = 1.0 + np.abs(params[:, columns]).max(axis=0)
            fresh[columns] = moved > CURVATURE_KEPT_WITHIN * size
            done = moved <= tol * size
            outcome[columns[done]] = FIT_FOUND
            active[columns[done]] = False
        return params, outcome

    def _column_reach(self) -> np.ndarray:
        """max_i |x_ij| of every column j (a step's largest move of a linear index)."""
        if not hasattr(self, "_reach"):
            self._reach = np.abs(self.X).max(axis=0)
        return self._reach

    def _scores_and_informations(self, params: np.ndarray, with_loglike: bool = False) -> tuple:
        """The scores (p x m) and information matrices (m x p x p) at every column of
        ``params``, after the m log-likelihoods and largest |linear index| where
        ``with_loglike``."""
        eta = self.X @ params + self.offset[:, None]
        largest = np.abs(eta).max(axis=0) if with_loglike else None
        loglike, derivative, curvature = binary_terms(
            eta, self.y[:, None], self.family, need_loglike=with_loglike
        )
        score = self.X.T @ self._weighted(derivative)
        found = score, self._informations(self._weighted(curvature))
        return (self.weights @ loglike, largest, *found) if with_loglike else found

    def _informations(self, weighted_curvature: np.ndarray) -> np.ndarray:
        """k x p x p information matrices X' diag(column j of ``weighted_curvature``) X, from
        the column products (as ``batched_newton._hessians``): one product with those not all
        zero (``_whole_products``), kept where the products take at most ``PRODUCTS_KEPT``
        numbers, else made again for each block of ``PRODUCTS_BLOCK`` rows (a large sample's
        products are never held whole). The same numbers as ``_hessians`` from all the
        products to rounding (OpenBLAS may sum a product of another width in another order:
        on norway2010's designs bit for bit but for batches of five nulls, within 3e-15
        there; its 21 sets' bounds are bit for bit those of all the products)."""
        n, p = self.X.shape
        whole = self._whole_products()
        if whole is None:
            return hessians_by_blocks(self.X, weighted_curvature)
        products, where = whole
        columns = products.shape[1] - 1  # the products not all zero; the last is zeros
        flat = np.empty((weighted_curvature.shape[1], columns + 1))
        np.matmul(weighted_curvature.T, products[:, :columns], out=flat[:, :columns])
        flat[:, columns] = 0.0
        gather = _information_positions(p, where)
        return np.take(flat, gather, axis=1).reshape(-1, p, p)

    def _restriction_tangent(self, gradient: np.ndarray) -> np.ndarray:
        """The slope db/dc of the restricted estimates' path under g(b) = c at the estimate
        (``gradient`` is g's there): H^{-1} R / R H^{-1} R with R = ``gradient`` and H the
        information at the estimate, where the multiplier is zero, so the Lagrangian's matrix
        is H itself (``_lagrange_step``'s slope); NaN where H is singular. The grid's inner
        nulls start on it (off by the square of their distance, as the coefficient sets'
        ``_tangent_starts``) and later batches' cubic starts read it as the estimate's slope."""
        information = self._scores_and_informations(self.estimate[:, None])[1]
        right = np.stack([np.zeros_like(gradient), gradient])[None].transpose(0, 2, 1)
        _, _, finite, path = _lagrange_step(information, right, np.zeros(1))
        return path[0] if finite[0] else np.full(len(self.estimate), np.nan)

    def _restriction_inversion(
        self,
        restriction: Any,
        null_values: np.ndarray,
        starts: np.ndarray | None,
        alternative,
        slopes: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, _Excesses, np.ndarray, np.ndarray]:
        """(p, t, excess, outcome, params) of the tests of g(b) = c at every c of
        ``null_values`` (:meth:`restriction_test`'s statistic, the restricted fits batched, the
        statistics of all nulls together as the coefficient sets' ``_tests``; ``outcome`` as
        :meth:`restricted_fits_under` gives it): NaN where the fit was not found or is
        separated."""
        settled = {} if self._settles_starts and starts is not None else None
        params, outcome = self.restricted_fits_under(
            restriction, null_values, starts, tol=INVERSION_STEP, slopes=slopes, settled=settled
        )
        m = params.shape[1]
        cluster_scores = np.full((self.n_clusters, m), np.nan)
        fitted = outcome == FIT_FOUND
        usable_at_start = np.zeros(0, dtype=np.intp)
        if settled and settled["columns"].size:  # found at their starts: scored there
            at_start = settled["columns"]
            fitted[at_start] = False
            cluster_scores[:, at_start], finite = self._projected_cluster_scores(
                params[:, at_start], settled["information"], settled["gradient"]
            )
            usable_at_start = at_start[finite]
        usable = np.flatnonzero(fitted)
        if usable.size:
            found, finite = self._restricted_cluster_scores(restriction, params[:, usable])
            cluster_scores[:, usable] = found  # a separated fit: NaN, no statistic there
            usable = usable[finite]
        usable = np.union1d(usable, usable_at_start)
        pvalues, statistics, excess = self._tests(cluster_scores, usable, alternative)
        return pvalues, statistics, excess, outcome, params

    def _restricted_cluster_scores(
        self, restriction: Any, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """G x m cluster sums of the scores at every column of ``params`` (restricted
        estimates) projected on H^{-1} R', R = dg/db there, and which were solvable (a
        separated fit's information is singular: no statistic, its column NaN)."""
        eta = self.X @ params + self.offset[:, None]
        _, derivative, curvature = binary_terms(
            eta, self.y[:, None], self.family, need_loglike=False
        )
        information = self._informations(self._weighted(curvature))
        _, gradient = _restriction_many(restriction, params)
        return self._projected_cluster_scores(params, information, gradient, derivative)

    def _projected_cluster_scores(
        self,
        params: np.ndarray,
        information: np.ndarray,
        gradient: np.ndarray,
        derivative: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """G x m cluster sums of the scores at every column of ``params`` projected on
        H^{-1} R' (``information`` the m informations there, R' = ``gradient``, p x m), and
        which were solvable (``_restricted_cluster_scores``); ``derivative`` (n x m, the score
        terms at ``params``) made here where not given."""
        if derivative is None:
            eta = self.X @ params + self.offset[:, None]
            _, derivative, _ = binary_terms(eta, self.y[:, None], self.family, need_loglike=False)
        directions, finite = _solved(information, gradient.T[:, :, None])
        sums = np.full((self.n_clusters, params.shape[1]), np.nan)
        self._cluster_sums(
            self._weighted(derivative),
            self.X @ directions[..., 0].T,
            np.flatnonzero(finite),
            sums,
        )
        return sums, finite

    @one_blas_thread
    def restriction_confidence_set(
        self,
        restriction: Any,
        name: str = "g(b)",
        alpha: float = 0.05,
        *,
        grid_points: int = 13,
        max_width: float = 40.0,
        rtol: float = 1e-7,
        alternative: str = "two-sided",
    ) -> ConfidenceSet:
        """{c : p(c) > alpha}, p(c) the p-value of :meth:`restriction_test` of g(b) = c: the
        values of g the test the verdict reads does not reject, by the test inversion of
        :meth:`confidence_set` (grid, bisection with p-values evaluated ahead, undetermined
        ends), around g at the estimate, with g's cluster-robust delta-method standard error as
        the scale. The restricted fits of each batch of nulls are solved together
        (:meth:`restricted_fits_under`), each started where the fits already found put it
        (interpolated in c between the nearest found on either side; the grid's on the tangent
        of the restricted estimates' path at the estimate, ``_restriction_tangent``, those
        beyond TANGENT_REACH standard errors at its point that far out; a later batch's null
        whose first step is below SETTLED_RESTRICTION is taken where it starts). A value where
        no finite coefficients give g(b) = c (the fit diverges) has no test: it is left out of
        the grid (so is one whose fit did not settle, with a note of its own).
        Each null costs a nonlinear restricted fit, so the grid's inner part is 13 points (one
        standard error apart) rather than the coefficients' 41; bisection narrows each
        crossing to the same tolerance."""
        value, gradient = restriction(self.estimate)
        gradient = np.asarray(gradient, dtype=float)
        scale = math.sqrt(max(float(gradient @ self._robust_vcov() @ gradient), 0.0))
        tangent = self._restriction_tangent(gradient)
        known = {float(value): (self.estimate, tangent)}

        def inversion(values):
            values = np.asarray(values, dtype=float)
            found = np.array(sorted(known))
            kept = (
                found,
                np.column_stack([known[c][0] for c in found]),
                np.column_stack([known[c][1] for c in found]),
            )
            starts = _interpolated_starts(kept, values, self.estimate)
            if found.size == 1 and np.isfinite(tangent).all():  # the grid: on the tangent
                reach = TANGENT_REACH * scale
                starts += tangent[:, None] * np.clip(values - float(value), -reach, reach)
            slopes = np.full((len(self.estimate), values.size), np.nan)
            pvalues, statistics, excess, outcome, params = self._restriction_inversion(
                restriction, values, starts, alternative, slopes
            )
            found = outcome == FIT_FOUND
            for c, fit, slope in zip(
                values[found], params[:, found].T, slopes[:, found].T, strict=True
            ):
                known[float(c)] = (fit, slope)
            return pvalues, statistics, excess, outcome

        return self._inverted_set(
            inversion,
            name,
            float(value),
            scale,
            alpha,
            grid_points=grid_points,
            max_width=max_width,
            rtol=rtol,
            alternative=alternative,
        )

    @staticmethod
    def bootstrap_p_value(
        statistic: float,
        distribution: np.ndarray,
        tie_rule: str = "inclusive",
        alternative: str = "two-sided",
    ) -> float:
        """Bootstrap p-value under the tie rule of the module docstring (step 6).

        Two-sided: "inclusive" is the share of draws with |t*| >= |t| (1 - 1e-10), "strict"
        |t*| > |t| (1 + 1e-10), so a draw tying the actual statistic counts under the first rule
        and not the second. One-sided, the same on the signed statistic s = t ("greater") or
        s = -t ("less"): s* >= s (inclusive) or s* > s (strict), ties to a relative 1e-10.
        With enumerated draws the constant vectors c 1 with c > 0 tie s, so the smallest
        one-sided p-value is half the two-sided one (1/2^G Rademacher, 3/6^G Webb).
        """
        if not math.isfinite(statistic):
            return float("nan")
        draws, actual = _oriented(statistic, distribution, alternative)
        slack = TIE_TOLERANCE * abs(actual)
        if tie_rule == "strict":
            return float(np.mean(draws > actual + slack))
        return float(np.mean(draws >= actual - slack))

    def p_value(self, term: str | int, null_value: float, alternative: str = "two-sided") -> float:
        """p(c) alone: what test inversion evaluates."""
        return self.test(term, null_value, alternative).p_value

    @one_blas_thread
    def cluster_robust_se(self, term: str | int) -> float:
        """Cluster-robust standard error of the unrestricted estimate (G/(G-1), Stata's vce)."""
        k = self.column(term)
        return float(math.sqrt(self._robust_vcov()[k, k]))

    def _robust_vcov(self) -> np.ndarray:
        """``_cluster_robust_vcov``, computed once (the estimate is fixed at construction):
        every confidence set's scale reads it (a full pass over the data with its cluster
        sums, about 1.4 ms at 1,604 x 16, was made again for every set)."""
        found = self.__dict__.get("_robust_vcov_kept")
        if found is None:
            found = self._robust_vcov_kept = self._cluster_robust_vcov()
        return found

    def _cluster_robust_vcov(self) -> np.ndarray:
        """The cluster-robust covariance of the unrestricted estimate (G/(G-1), Stata's vce)."""
        eta = self.X @ self.estimate + self.offset
        _, derivative, curvature = binary_terms(eta, self.y, self.family, need_loglike=False)
        information = (self.X * (self.weights * curvature)[:, None]).T @ self.X
        bread = np.linalg.inv(information)
        weighted = np.broadcast_to((self.weights * derivative)[:, None], self.X.shape)
        sums = np.zeros((self.n_clusters, self.X.shape[1]))  # the rows' scores in row order,
        # as np.add.at added them
        self._cluster_sums(self.X, weighted, np.arange(self.X.shape[1]), sums)
        G = self.n_clusters
        return G / (G - 1) * bread @ (sums.T @ sums) @ bread

    @one_blas_thread
    def confidence_set(
        self,
        term: str | int,
        alpha: float = 0.05,
        *,
        grid_points: int = 41,
        max_width: float = 40.0,
        rtol: float = 1e-7,
        alternative: str = "two-sided",
    ) -> ConfidenceSet:
        """{c : p(c) > alpha} by a grid of +-max_width cluster-robust s.e. (its restricted fits
        batched), then bisection between grid points that disagree until the bracket is below
        rtol s.e., its p-values evaluated ahead where the draws predict the crossing (a round
        of them in one batched solve: usually two or three rounds where bisection alone took
        eight); the bound is the last bracket's middle, as bisection alone finds it.

        With a one-sided ``alternative`` the set inverts the one-sided test: "greater" gives a
        lower bound [L, inf) consistent with the one-sided p-value (p(0) <= alpha exactly when
        0 is outside), "less" an upper bound.
        """
        k = self.column(term)

        def inversion(values):
            pvalues, statistics, excess = self._inversion(k, values, alternative)
            return pvalues, statistics, excess, np.full(pvalues.shape, FIT_FOUND, dtype=np.int8)

        return self._inverted_set(
            inversion,
            self.names[k],
            float(self.estimate[k]),
            self.cluster_robust_se(k),
            alpha,
            grid_points=grid_points,
            max_width=max_width,
            rtol=rtol,
            alternative=alternative,
        )

    def _inverted_set(
        self,
        inversion: Callable,
        name: str,
        centre: float,
        scale: float,
        alpha: float,
        *,
        grid_points: int,
        max_width: float,
        rtol: float,
        alternative: str,
    ) -> ConfidenceSet:
        """{c : p(c) > alpha} for a batched ``inversion(values)`` giving (p, t, excess, outcome)
        at every null value (``_inversion``'s three, and whether a test exists there at all:
        a null whose ``outcome`` is not ``FIT_FOUND`` is left out of the grid, with a note of
        why, and counts as accepted in bisection):
        the grid of ``centre`` +- ``max_width`` ``scale``, the crossings by bisection with
        p-values evaluated ahead, undetermined ends (``FLAT_TAIL``) reported as unbounded."""
        notes = []
        if alternative != "two-sided":
            notes.append(
                f"One-sided ({alternative}): {'lower' if alternative == 'greater' else 'upper'} "
                f"{1 - alpha:.0%} bound, by inverting the one-sided bootstrap test."
            )
        if alternative == "two-sided" and self.smallest_p_value > alpha:
            notes.append(
                f"Every value is accepted: the smallest attainable p-value "
                f"{self.smallest_p_value:.4g} exceeds alpha = {alpha:g}."
            )
            return ConfidenceSet(name, alpha, [(-math.inf, math.inf)], [], centre, notes)
        offsets = np.concatenate(
            [np.linspace(-6, 6, grid_points), [-max_width, -20, -12, 12, 20, max_width]]
        )
        grid = np.sort(centre + scale * offsets)
        # the grid in one batched solve
        pvalues, statistics, excess, outcome = inversion(grid)
        kept = outcome == FIT_FOUND
        notes.extend(_left_out_notes(grid, outcome))
        if not kept.all():
            grid, pvalues, excess = grid[kept], pvalues[kept], excess[kept]
        # a null whose restricted fit is separated has no statistic: it cannot be rejected
        separated = list(grid[np.isnan(pvalues)])
        grid_statistics = statistics[kept]
        accepted = ~(pvalues <= alpha)
        tolerance = rtol * scale

        def crossing(inside: int, outside: int):
            """The bound between neighbouring grid points that disagree: bisection to
            ``tolerance`` (``_halvings``), whose p-values are evaluated ahead a round at a
            time: the nulls bisection would visit if p crossed alpha where every draw's
            statistic says it does (``_predicted_bound``), on the cubic through the
            narrowest bracket the nulls already evaluated give and the two known nulls
            nearest outside it (the next grid cells' at first), as far as the first within
            PREDICTED_TO ** round of the bracket of the prediction or CURVED_TRUST of the
            cubic's distance from the linear prediction. The next round predicts again, from
            the narrower bracket where bisection stopped. The bound is the one bisection
            finds, whichever crossing it is when there are several. A round from a bracket
            narrower than FLAT_AHEAD ``scale`` (or whose two predictions agree to FLAT_SHIFT
            ``scale``) also evaluates the null one ``scale`` beyond its prediction
            into the rejected values (the flat-tail check, ``_flat_end``): used where the
            prediction was within FLAT_SHIFT ``scale`` of the bound, else that null is a
            round of its own at the bound. A generator: it yields each round's nulls and is
            sent back their p-values, statistics and draw excesses (``rows(j)``); it returns
            (bound, p inside, p outside, the statistic at the last null accepted, the
            statistic one ``scale`` beyond)."""
            low, high = float(grid[inside]), float(grid[outside])
            p_low, p_high = pvalues[inside], pvalues[outside]
            found = {low: p_low, high: p_high}
            statistic = {low: grid_statistics[inside], high: grid_statistics[outside]}
            draws = {low: lambda: excess[inside], high: lambda: excess[outside]}
            for neighbour in (2 * inside - outside, 2 * outside - inside):  # the next cells'
                if 0 <= neighbour < len(grid):
                    draws[float(grid[neighbour])] = functools.partial(
                        _shifted_row, excess, 0, neighbour
                    )
            beyond = (math.nan, math.nan)  # (where, its statistic)
            outward = scale * np.sign(high - low)  # one scale into the rejected values
            rounds = 0
            while True:
                result = _halvings(low, high, p_low, p_high, tolerance, alpha, found.get)
                if result[0] == "done":
                    bound = result[1]
                    if not abs(beyond[0] - bound - outward) <= FLAT_SHIFT * scale:
                        _, t_new, _ = yield np.array([bound + outward])  # a round of its own
                        beyond = (bound + outward, t_new[0])
                    return (*result[1:4], statistic[result[4]], beyond[1])
                _, low, high, p_low, p_high = result
                # predicted from the narrowest bracket the nulls already evaluated give
                inner, outer = _known_bracket(found, low, high, alpha)
                at_ends = draws[inner](), draws[outer]()  # each end's draw excesses
                nearest = _nearest_outside(draws, inner, outer, CURVED_NULLS)
                curved = {
                    "others": [draws[point]() for point in nearest],
                    "places": [(point - inner) / (outer - inner) for point in nearest],
                }
                guess, linear = (
                    inner + (outer - inner) * where
                    for where in _predicted_bound(*at_ends, alpha, **curved)
                )
                if not math.isfinite(guess):
                    guess = 0.5 * (low + high)
                visited: list[float] = []

                rounds += 1  # the guess is not trusted closer in than near
                near = PREDICTED_TO**rounds * abs(outer - inner)
                if nearest and math.isfinite(linear):  # the cubic's: see CURVED_TRUST
                    near = min(near, CURVED_TRUST * abs(guess - linear))
                if near < SECTIONS * tolerance:  # less than a round left: to the tolerance
                    near = 0.0

                def predicted(point, guess=guess, side=low - guess, near=near, visited=visited):
                    if point in found:
                        return found[point]
                    if visited and abs(visited[-1] - guess) < near:
                        return None  # the rest of the path: the next round predicts it
                    visited.append(point)  # accepted on the accepted end's side of the guess
                    return 1.0 if (point - guess) * side > 0 else 0.0

                _halvings(low, high, 1.0, 0.0, tolerance, alpha, predicted)
                # a narrow bracket's round carries the flat-tail check's null: a scale beyond
                # the prediction, which is then close to the bound (so does a round whose two
                # predictions agree to FLAT_SHIFT: it usually ends the bisection)
                narrow = (
                    abs(high - low) <= FLAT_AHEAD * scale
                    or abs(guess - linear) <= FLAT_SHIFT * scale
                )
                ahead = [guess + outward] if narrow else []
                p_new, t_new, rows = yield np.array(visited + ahead)
                separated.extend(
                    point for point, p in zip(visited, p_new, strict=False) if np.isnan(p)
                )
                for index, point in enumerate(visited):
                    found[point], statistic[point] = p_new[index], t_new[index]
                    draws[point] = functools.partial(rows, index)
                if ahead:
                    beyond = (ahead[0], t_new[-1])

        # every bound of the set (a pair of neighbouring grid points that disagree, the
        # accepted one first) found side by side: a round of all of them in one batched solve,
        # each null started between the last round's fits on either side of it
        pairs = [
            (index, index - 1) if accepted[index] else (index - 1, index)
            for index in range(1, len(accepted))
            if accepted[index] != accepted[index - 1]
        ]
        bounds = _side_by_side(
            [crossing(*pair) for pair in pairs], lambda points: inversion(points)[:3]
        )
        bounds_in_order = iter(bounds)

        intervals: list[tuple[float, float]] = []
        bound_p: list[tuple[float, float, float]] = []
        start = None
        for index, is_accepted in enumerate(accepted):
            if is_accepted and start is None:
                if index == 0:
                    start = -math.inf
                else:
                    bound, p_in, p_out, _, _ = next(bounds_in_order)
                    start = bound
                    bound_p.append((bound, p_in, p_out))
            if start is not None and (not is_accepted or index == len(accepted) - 1):
                if is_accepted:  # accepted up to the last grid point
                    intervals.append((start, math.inf))
                else:
                    bound, p_in, p_out, _, _ = next(bounds_in_order)
                    bound_p.append((bound, p_in, p_out))
                    intervals.append((start, bound))
                start = None
        if separated:
            notes.append(
                f"The restricted fit is separated at {len(separated)} of the values tried "
                f"({min(separated):.4g} to {max(separated):.4g}): no score statistic there, "
                "counted as accepted."
            )
        if not accepted.any():
            notes.append("No value on the grid is accepted: the confidence set is empty.")
        if intervals and not all(math.isfinite(v) for pair in intervals for v in pair):
            notes.append(
                f"Accepted even {max_width:g} standard errors from the estimate: reported as "
                "unbounded."
            )
        # the ends the nulls already evaluated say may be flat: judged at the end itself
        ends = [
            (bound, "below" if outside < inside else "above")
            for (inside, outside), (bound, _, _, at, beyond) in zip(pairs, bounds, strict=True)
            if _maybe_flat(at, beyond)
        ]
        undetermined = self._undetermined_ends(inversion, ends, scale) if ends else []
        if undetermined:
            intervals = _extended(intervals, undetermined)
            kept_ends = {v for pair in intervals for v in pair}
            bound_p = [row for row in bound_p if row[0] in kept_ends]
        found = ConfidenceSet(name, alpha, intervals, bound_p, centre, notes, undetermined)
        found.notes += found.undetermined_notes()
        return found

    def _undetermined_ends(
        self, inversion: Callable, ends: list[tuple[float, str]], scale: float
    ) -> list[tuple[float, str]]:
        """Of ``ends`` (each finite end of the set with the way it would be extended past it:
        "below" a piece's lower end, "above" its upper end), those found where the statistic no
        longer moves with the null: at the end and one standard error beyond it (into the
        values it rejects) the statistic differs by at most ``FLAT_TAIL`` of itself
        (``_flat_end``; an end next to a separated null is left as found). There the statistic
        and its draws are at their limit, and which null is first rejected is decided by
        rounding (a few ulps of the logistic moved such an end near -25 log-odds by 1e-4)."""
        step = {"below": -scale, "above": scale}
        points = np.array([v for bound, way in ends for v in (bound, bound + step[way])])
        _, statistics, _, _ = inversion(points)
        return [
            end
            for end, at, beyond in zip(ends, statistics[0::2], statistics[1::2], strict=True)
            if _flat_end(at, beyond)
        ]


def _left_out_notes(grid: np.ndarray, outcome: np.ndarray) -> list[str]:
    """What a set says of the grid's values left out (``outcome`` not ``FIT_FOUND``): where the
    restricted fit diverges, and where it did not settle."""
    notes = []
    for code, why in (
        (
            FIT_DIVERGES,
            "the coefficients diverge there (the restricted fit runs into separation: a linear "
            f"index beyond {SEPARATED_INDEX:g} or a singular information), no finite "
            "coefficients give these values",
        ),
        (
            FIT_UNSETTLED,
            f"the restricted fit did not settle in {RESTRICTION_STEPS} steps (no maximum was "
            "found there, nor shown not to exist)",
        ),
    ):
        left_out = grid[outcome == code]
        if left_out.size:
            notes.append(
                f"No restricted fit at {left_out.size} of the grid's values ({left_out.min():.4g} "
                f"to {left_out.max():.4g}): {why}; they are left out of the grid."
            )
    return notes


def _maybe_flat(at: float, beyond: float) -> bool:
    """Whether an end may be undetermined (``WildScoreBootstrap._undetermined_ends``), from the
    statistic at the last null accepted before it (within the inversion's tolerance of it) and
    one standard error beyond a prediction of it within FLAT_SHIFT standard errors: the flat-tail
    rule with FLAT_MARGIN times its tolerance. Elsewhere the statistic moves by far more than
    the two points' distance from the end's own can change (at most FLAT_SHIFT standard errors
    times the statistic's slope, where an end judged flat at the end itself moves by at most
    FLAT_TAIL over a whole standard error), so the end is not flat at the end itself either."""
    return _flat_end(at, beyond, FLAT_MARGIN)


def _flat_end(at: float, beyond: float, margin: float = 1.0) -> bool:
    """The flat-tail rule: the statistic one standard error beyond an end (``beyond``) differs
    from the statistic at it (``at``), or its absolute value from the absolute value there, by
    at most ``FLAT_TAIL`` (times ``margin``) of itself. The absolute values: a statistic at its
    limit far out is constant to rounding, and rounding decides its sign there (it flipped
    between two nulls of the supermodularity set in tests/study/test_study_sensitivity.py as
    the restricted fits' starts changed). A separated or unsettled null (NaN) says nothing of
    flatness."""
    with np.errstate(invalid="ignore"):
        change = min(abs(beyond - at), abs(abs(beyond) - abs(at)))
        return bool(change <= margin * FLAT_TAIL * max(1.0, abs(at)))


def _reparametrisation(
    restrictions: np.ndarray, targets: np.ndarray | Sequence[float]
) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """R b = r solved for the pivot columns J (:meth:`WildScoreBootstrap.constrained_fit`):
    (J, the free columns' mask, b_J at b_F = 0, the slope S with b_J = shift - S b_F)."""
    R = np.atleast_2d(np.asarray(restrictions, dtype=float))
    r = np.broadcast_to(np.asarray(targets, dtype=float), (R.shape[0],))
    pivots = _pivot_columns(R)
    keep = np.ones(R.shape[1], dtype=bool)
    keep[pivots] = False
    pivot_block = R[:, pivots]
    if len(pivots) == 1 and pivot_block[0, 0] == 0.0:
        raise EstimationError("the restriction's gradient is zero: no restriction to impose")
    if len(pivots) == 1:  # b_j = (r - R_F b_F) / R_j, divided as written
        return pivots, keep, r / pivot_block[0, 0], R[:, keep] / pivot_block[0, 0]
    try:
        shift = np.linalg.solve(pivot_block, r)  # b_J at b_F = 0
        slope = np.linalg.solve(pivot_block, R[:, keep])  # minus d b_J / d b_F
    except np.linalg.LinAlgError:
        raise EstimationError("the restrictions are not of full row rank") from None
    return pivots, keep, shift, slope


def _shifted(restriction: Any, null_value: float) -> Callable:
    """g(b) - c with g's gradient: the restriction g(b) = c as one of the form h(b) = 0."""

    def shifted(params):
        value, gradient = restriction(params)
        return value - null_value, gradient

    return shifted


def _restriction_many(restriction: Any, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """g and its gradient at every column of ``params`` (p x m): m values and a p x m matrix,
    by ``restriction.many`` where it exists (one pass for all), else column by column."""
    if hasattr(restriction, "many"):
        values, gradients = restriction.many(params)
        return np.asarray(values, dtype=float), np.asarray(gradients, dtype=float)
    pairs = [restriction(params[:, j]) for j in range(params.shape[1])]
    values = np.array([float(value) for value, _ in pairs])
    return values, np.column_stack([np.asarray(g, dtype=float) for _, g in pairs])


def _restriction_second_order(
    restriction: Any, params: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g, its gradient and its Hessian at every column of ``params`` (p x m): m values, p x m
    and m x p x p, by ``restriction.many_with_hessians`` where it exists (one pass), else the
    Hessians by forward differences of the gradient (``_restriction_many`` of the p x m moved
    columns at once, steps of ``HESSIAN_STEP`` (1 + |b_j|)), symmetrised. The Hessian only
    shapes a restricted fit's steps (``WildScoreBootstrap.restricted_fits_under``), never the
    point where they stop."""
    if hasattr(restriction, "many_with_hessians"):
        values, gradients, hessians = restriction.many_with_hessians(params)
        return (
            np.asarray(values, dtype=float),
            np.asarray(gradients, dtype=float),
            np.asarray(hessians, dtype=float),
        )
    values, gradients = _restriction_many(restriction, params)
    p, m = params.shape
    steps = HESSIAN_STEP * (1.0 + np.abs(params))  # p x m
    moved = np.tile(params, p)  # column j * m + l: fit l with b_j moved
    moved[np.repeat(np.arange(p), m), np.arange(p * m)] += steps.ravel()
    _, moved_gradients = _restriction_many(restriction, moved)
    columns = (moved_gradients.reshape(p, p, m) - gradients[:, None, :]) / steps[None, :, :]
    hessians = columns.transpose(2, 0, 1)  # m x p x p: row i, column j
    return values, gradients, 0.5 * (hessians + hessians.transpose(0, 2, 1))


def _lagrange_step(
    matrices: np.ndarray, right: np.ndarray, excess: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One Newton step on the Lagrangian of each fit under one restriction: with W =
    ``matrices`` (k x p x p), s and R the columns of ``right`` (k x p x 2) and e = g(b) - c
    (``excess``), delta = W^{-1}(s - lambda R) with lambda = (R W^{-1} s + e) / R W^{-1} R,
    so that R delta = -e. Returns (k x p steps, k multipliers, which are usable: W positive
    definite, the step finite, and k x p slopes W^{-1} R / R W^{-1} R: the derivative db/dc
    of the restricted fit in the null c, from W db = -R dlambda and R db = 1)."""
    solved, finite = _solved(matrices, right)
    finite &= _positive_definite(matrices)
    along_score, along_gradient = solved[..., 0], solved[..., 1]
    gradient = right[..., 1]
    curvature = np.einsum("kp,kp->k", gradient, along_gradient)
    with np.errstate(divide="ignore", invalid="ignore"):
        multiplier = (np.einsum("kp,kp->k", gradient, along_score) + excess) / curvature
        step = along_score - multiplier[:, None] * along_gradient
        path = along_gradient / curvature[:, None]
    finite &= (curvature > 0) & np.isfinite(step).all(axis=1)
    return step, multiplier, finite, path


def _positive_definite(matrices: np.ndarray) -> np.ndarray:
    """Which of k p x p symmetric matrices are positive definite (a Cholesky factor exists)."""
    try:
        np.linalg.cholesky(matrices)
        return np.ones(len(matrices), dtype=bool)
    except np.linalg.LinAlgError:
        found = np.zeros(len(matrices), dtype=bool)
        for k, matrix in enumerate(matrices):
            try:
                np.linalg.cholesky(matrix)
                found[k] = True
            except np.linalg.LinAlgError:
                pass
        return found


def _solved(matrices: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each matrices[k]^{-1} right[k] (k x p x p and k x p x r), and which were solvable: a
    singular matrix (a separated fit) gives NaN and False, the others are solved as one batch."""
    try:
        return np.linalg.solve(matrices, right), np.ones(len(matrices), dtype=bool)
    except np.linalg.LinAlgError:
        solved = np.full(right.shape, np.nan)
        finite = np.zeros(len(matrices), dtype=bool)
        for k in range(len(matrices)):
            try:
                solved[k] = np.linalg.solve(matrices[k], right[k])
                finite[k] = True
            except np.linalg.LinAlgError:
                pass
        return solved, finite


def _extended(
    intervals: list[tuple[float, float]], undetermined: list[tuple[float, str]]
) -> list[tuple[float, float]]:
    """The set with each undetermined end moved to infinity (its piece extended past it) and
    the pieces that then overlap joined."""
    ends = set(undetermined)
    moved = sorted(
        (
            -math.inf if (low, "below") in ends else low,
            math.inf if (high, "above") in ends else high,
        )
        for low, high in intervals
    )
    joined = [moved[0]]
    for low, high in moved[1:]:
        if low <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], high))
        else:
            joined.append((low, high))
    return joined


def wild_score_test(
    X: np.ndarray,
    y: np.ndarray,
    clusters: np.ndarray,
    term: str | int,
    null_value: float = 0.0,
    **options,
) -> WildScoreTest:
    """One-shot wild cluster score bootstrap test of b_term = null_value (see the module)."""
    return WildScoreBootstrap(X, y, clusters, **options).test(term, null_value)


def wild_score_bootstrap(fit, data, *, cluster: str | None = None, **options) -> WildScoreBootstrap:
    """A :class:`WildScoreBootstrap` for a core ``Fit``: its design rebuilt from ``data``.

    ``cluster`` defaults to the fit's cluster variable. Options: draws, weight_type, seed.
    """
    if not isinstance(data, pd.DataFrame):  # a Parquet path or a dask DataFrame
        return streamed_wild_bootstrap(fit, data, cluster=cluster, **options)
    cluster = cluster or fit.cluster_var
    if cluster is None:
        raise InputError(
            "the wild cluster bootstrap needs a cluster column",
            expected="cluster='<column>' or a fit with vcov={'cluster': '<column>'}",
        )
    design = design_of_fit(fit, data, cluster)
    return WildScoreBootstrap(
        design.X,
        design.y,
        design.cluster_labels[design.clusters],
        family=fit.family,
        names=design.names,
        weights=design.weights,
        offset=design.offset,
        **options,
    )


FEW_CLUSTERS = 50  # below this, report the bootstrap (docs/few_clusters.md: Wald 6.5-8.3%, G = 30)


def clustered_inference(
    fit,
    data,
    term: str,
    *,
    null_value: float = 0.0,
    alpha: float = 0.05,
    with_interval: bool = True,
    **options,
) -> dict:
    """The test of ``term`` = ``null_value`` to report for a cluster-robust ``Fit``, and why.

    Below ``FEW_CLUSTERS`` clusters the wild cluster score bootstrap is reported (with its
    confidence set) and the cluster-robust Wald test shown beside it; otherwise the Wald test.
    A JSON-ready record with ``reported`` naming the inference and ``why`` saying why.
    """
    if fit.cluster_var is None:
        raise InputError(
            "clustered inference needs a fit with a cluster covariance",
            expected="vcov={'cluster': '<column>'}",
        )
    if term not in fit.params.index:
        raise InputError(
            "no such term in the model", value=term, expected=", ".join(fit.params.index)
        )
    estimate, se = float(fit.params[term]), float(fit.bse[term])
    z_value = (estimate - null_value) / se
    wald = {
        "inference": "cluster-robust Wald",
        "statistic": z_value,
        "p_value": float(two_sided_p(z_value)),
        "interval": [
            estimate - quantile(1 - alpha / 2) * se,
            estimate + quantile(1 - alpha / 2) * se,
        ],
    }
    record = {"term": term, "null_value": null_value, "n_clusters": fit.n_clusters, "wald": wald}
    if fit.n_clusters >= FEW_CLUSTERS:
        record |= {
            "reported": "cluster-robust Wald",
            "why": f"{fit.n_clusters} clusters are enough for the cluster-robust Wald test "
            f"(at least {FEW_CLUSTERS}; docs/few_clusters.md)",
        }
        return record
    bootstrap = wild_score_bootstrap(fit, data, **options)
    test = bootstrap.test(term, null_value)
    record["bootstrap"] = test.as_record(alpha)
    if with_interval:
        record["bootstrap"]["confidence_set"] = bootstrap.confidence_set(term, alpha).as_record()
    record |= {
        "reported": "wild cluster score bootstrap",
        "why": f"only {fit.n_clusters} clusters (fewer than {FEW_CLUSTERS}): the cluster-robust "
        f"Wald test over-rejects ({rates_words('region_wald', 5, 'size')} at a nominal 5% with "
        f"five city-regions, {rates_words('region_wald', 30, 'size')} with 30 in "
        "docs/few_clusters.md); it is shown for comparison only",
    }
    return record


# ---- over chunks: Parquet row groups or Dask partitions ----
#
# The wild cluster score bootstrap over chunks: Parquet row groups or Dask partitions.
#
# What the bootstrap needs from the data are sums: the restricted fits are Newton steps (p x p sums
# per chunk, the tested columns moved into the offset), and the partialled cluster scores are the
# G x p cluster score sums at the restricted estimate times H^{-1} R' (one pass gives both the
# information and the sums, because the chunks carry cluster codes). The draws, statistics and
# p-values are the in-memory class's, so p-values are identical up to draws within the tie
# tolerance::
#
#     bootstrap = streamed_wild_bootstrap(fit, "firms/", cluster="region", engine="stream")
#     bootstrap.test("breadth_international").p_value


def cluster_totals(chunk, n_clusters: int) -> np.ndarray:
    weights = None if chunk.weights is None else chunk.weights
    return np.bincount(chunk.clusters, weights=weights, minlength=n_clusters).astype(np.float64)


def restricted_sums(chunk, family, params, keep, columns, values):
    if chunk.nobs == 0:
        return None
    offset = chunk.X[:, columns] @ values
    if chunk.offset is not None:
        offset = offset + chunk.offset
    sums = block_sums(family, params, chunk.X[:, keep], chunk.y, chunk.weights, offset)
    return sums.llf, sums.gradient, sums.hessian


def restricted_sums_many(chunk, family, batch: dict, keep, k: int) -> dict:
    """``restricted_sums`` for several (b_k = value, params) pairs in one pass: {j: sums}."""
    if chunk.nobs == 0:
        return {}
    X = chunk.X[:, keep]
    out = {}
    for j, (value, params) in batch.items():
        offset = chunk.X[:, k] * value
        if chunk.offset is not None:
            offset = offset + chunk.offset
        sums = block_sums(family, params, X, chunk.y, chunk.weights, offset)
        out[j] = (sums.llf, sums.gradient, sums.hessian)
    return out


def reparametrised_sums(chunk, family, params, keep, pivots, slope, shift):
    """``restricted_sums`` of a restriction R b = r reparametrised over the free columns
    (:meth:`WildScoreBootstrap.constrained_fit`): the design X_F - X_J slope, X_J shift
    added to the offset."""
    if chunk.nobs == 0:
        return None
    X = chunk.X[:, keep]
    if slope.any():
        X = X - chunk.X[:, pivots] @ slope
    offset = chunk.X[:, pivots] @ shift
    if chunk.offset is not None:
        offset = chunk.offset + offset
    sums = block_sums(family, params, X, chunk.y, chunk.weights, offset)
    return sums.llf, sums.gradient, sums.hessian


def column_reach(chunk) -> list:
    """[max_i |x_ij| of every column], a list so that the chunks' lists join."""
    return [np.abs(chunk.X).max(axis=0)] if chunk.nobs else []


def scores_and_informations(chunk, family, params: np.ndarray, with_loglike: bool = False):
    """The score (p x m) and the information matrices (m x p x p) of the chunk's rows at
    every column of ``params``, after the m log-likelihoods where ``with_loglike``."""
    if chunk.nobs == 0:
        return None
    p, m = params.shape
    loglike, scores, informations = np.empty(m), np.empty((p, m)), np.empty((m, p, p))
    for j in range(m):
        sums = chunk.sums(family, params[:, j], need_loglike=with_loglike)
        scores[:, j], informations[j] = sums.gradient, -sums.hessian
        if with_loglike:
            loglike[j] = sums.llf
    return (loglike, scores, informations) if with_loglike else (scores, informations)


def score_pieces_many(chunk, family, batch: dict, n_clusters: int) -> dict:
    """``score_pieces`` at several parameter vectors in one pass: {j: pieces}."""
    return {j: score_pieces(chunk, family, params, n_clusters) for j, params in batch.items()}


class _LockstepPasses:
    """Newton loops run in threads, one per null value, whose passes over the chunks are made
    together: each loop's ``sums(params)`` waits until every loop still running has asked, then
    one pass computes them all (a round of tasks on Dask instead of one per loop)."""

    def __init__(self, loops: int, run) -> None:
        import threading

        self.condition = threading.Condition()
        self.active, self.run = loops, run
        self.asked: dict = {}
        self.answers: dict = {}
        self.round = 0

    def _pass(self) -> None:
        asked, self.asked = self.asked, {}
        try:
            answers = self.run(asked)
        except BaseException as error:  # every waiting loop raises it
            answers = {j: error for j in asked}
        self.answers.update(answers)
        self.round += 1
        self.condition.notify_all()

    def sums(self, j, value, params):
        with self.condition:
            self.asked[j] = (value, params)
            this_round = self.round
            if len(self.asked) == self.active:
                self._pass()
            while j not in self.answers and self.round == this_round:
                self.condition.wait()
            answer = self.answers.pop(j)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def finished(self) -> None:
        with self.condition:
            self.active -= 1
            if self.asked and len(self.asked) == self.active:
                self._pass()


def _calls_together(chunk, calls: tuple) -> tuple:
    """Several passes' functions on one chunk: a tuple of their results, in the calls' order."""
    return tuple(function(chunk, *args) for function, args in calls)


class _MergedPasses:
    """Chunk sources whose passes, asked for by several threads (one per term's bootstrap work,
    or one per sample's: ``joined``), are made together: a call waits until every thread still
    working has asked for one, then one round computes them all, one pass over each source's
    chunks for all the calls asked of it (``_calls_together``), and on Dask every source's pass
    in one graph (one round trip through the scheduler instead of one per thread). Each call's
    per-chunk results are tree-summed as its own pass would have been, so every thread gets the
    same numbers, bit for bit, as when run alone. Should one of a round's passes raise, its
    calls are made again one by one, each getting its own result or error.

    ``source``: the source ``map_designs`` reads (``for_each_term``: one bootstrap's source);
    threads on other sources ask through ``joined(source)``."""

    def __init__(self, source, participants: int) -> None:
        self.source = source
        self.condition = threading.Condition()
        self.active = participants
        self.asked: list = []  # (ticket, source, spec, function, args)
        self.answers: dict = {}
        self.tickets = itertools.count()
        self.passes = 0  # passes over a source's chunks
        self.rounds = 0  # rounds: one Dask graph each

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def joined(self, source) -> _Joined:
        """``source`` whose passes join this object's rounds."""
        return _Joined(self, source)

    def _pass(self) -> None:
        asked, self.asked = self.asked, []
        groups: dict = {}  # one pass per (source, specification)
        for ticket, source, spec, function, args in asked:
            key = (id(source), id(spec))
            groups.setdefault(key, (source, spec, []))[2].append((ticket, function, args))
        self.rounds += 1
        self.passes += len(groups)
        graphs: dict = {}  # client -> {key: delayed pass}: one graph per client
        for key, (source, spec, calls) in groups.items():
            # a graph where the source's own class makes one (not a wrapper's borrowed method)
            if getattr(type(source), "map_designs_graph", None) is not None:
                calls_ = tuple((f, a) for _t, f, a in calls)
                try:
                    graph = source.map_designs_graph(spec, _calls_together, calls_)
                except Exception:
                    continue  # made one by one below
                graphs.setdefault(id(source.client), (source.client, {}))[1][key] = graph
        computed: dict = {}
        from buzzpipe.estimate.dask_engine import aligned  # see its docstring

        for client, passes in graphs.values():
            try:
                values = aligned(client.gather(client.compute(list(passes.values()))))
            except Exception:
                continue  # made one by one below
            computed.update(zip(passes, values, strict=True))
        answers = {}
        for key, (source, spec, calls) in groups.items():
            try:
                if key in computed:
                    together = computed[key]
                else:
                    calls_ = tuple((f, a) for _t, f, a in calls)
                    together = source.map_designs(spec, _calls_together, calls_)
                for position, (ticket, _f, _a) in enumerate(calls):
                    answers[ticket] = None if together is None else together[position]
            except Exception:
                for ticket, function, args in calls:
                    try:
                        answers[ticket] = source.map_designs(spec, function, *args)
                    except Exception as error:
                        answers[ticket] = _Raised(error)
        self.answers.update(answers)
        self.condition.notify_all()

    def map_designs(self, spec, function, *args):
        return self._ask(self.source, spec, function, args)

    def _ask(self, source, spec, function, args):
        with self.condition:
            ticket = next(self.tickets)
            self.asked.append((ticket, source, spec, function, args))
            if len(self.asked) >= self.active:
                self._pass()
            while ticket not in self.answers:
                self.condition.wait()
            answer = self.answers.pop(ticket)
        if isinstance(answer, _Raised):
            raise answer.error
        return answer

    def finished(self) -> None:
        with self.condition:
            self.active -= 1
            if self.asked and len(self.asked) >= self.active:
                self._pass()


class _Joined:
    """A chunk source whose ``map_designs`` calls join a ``_MergedPasses``' rounds; the rest of
    the source as it is."""

    map_designs_graph = None  # a merged round of an enclosing merge makes its passes

    def __init__(self, merged: _MergedPasses, source) -> None:
        self._merged, self._source = merged, source

    def __getattr__(self, name: str):
        return getattr(self._source, name)

    def map_designs(self, spec, function, *args):
        return self._merged._ask(self._source, spec, function, args)


@dataclass
class _Raised:
    error: BaseException


def for_each_term(bootstrap, work, terms: Sequence) -> list:
    """``[work(term) for term in terms]``; on a chunked bootstrap the terms run side by side in
    threads whose passes over the chunks are merged (``_MergedPasses``), with the same results.
    An error is raised after all have run: the first term's in ``terms`` order, as a loop."""
    terms = list(terms)
    if not isinstance(bootstrap, StreamedWildScoreBootstrap) or len(terms) < 2:
        return [work(term) for term in terms]
    from concurrent.futures import ThreadPoolExecutor

    from buzzpipe.estimate.kernel import blas_threads

    merged = _MergedPasses(bootstrap.source, len(terms))

    def run(term):
        try:
            return work(term)
        except Exception as error:
            return _Raised(error)
        finally:
            merged.finished()

    bootstrap.source = merged
    try:  # BLAS pinned around the threads: their own pin and unpin then agree
        with blas_threads(1), ThreadPoolExecutor(max_workers=len(terms)) as pool:
            results = list(pool.map(run, terms))
    finally:
        bootstrap.source = merged.source
    bootstrap.merged_passes = getattr(bootstrap, "merged_passes", 0) + merged.passes
    for result in results:
        if isinstance(result, _Raised):
            raise result.error
    return results


def score_pieces(chunk, family, params, n_clusters: int) -> dict:
    sums = chunk.sums(
        family, params, cluster_codes=chunk.clusters, n_clusters=n_clusters, need_loglike=False
    )
    return {"information": -sums.hessian, "cluster_sums": sums.cluster_score_sums}


class StreamedWildScoreBootstrap(WildScoreBootstrap):
    """:class:`WildScoreBootstrap` whose data are a chunk source and a fixed specification."""

    _settles_starts = False  # every null fitted (``restricted_fits``), then scored

    def __init__(self, source, spec, family: str = "logit", **options) -> None:
        self.source, self.spec = source, spec
        self.family_model = get_family(family)
        self._configure(
            family=family,
            names=spec.estimated_names,
            cluster_labels=spec.cluster_labels,
            cluster_totals=source.map_designs(spec, cluster_totals, len(spec.cluster_labels)),
            draws=options.pop("draws", 9999),
            weight_type=options.pop("weight_type", None),
            seed=options.pop("seed", 0),
            convention=options.pop("convention", "buzzpipe"),
            small_sample=options.pop("small_sample", None),
            tie_rule=options.pop("tie_rule", None),
        )
        if options:
            raise InputError("unknown bootstrap option", value=sorted(options))
        p = len(self.names)
        self.estimate = self._fit(np.ones(p, dtype=bool), np.zeros(0, np.intp), np.zeros(0))
        self._restricted_start: dict = {}
        self._restricted_starts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # the last restricted_fits' score pieces, per thread (``for_each_term`` runs terms in
        # threads, each reading back the pieces of its own fits)
        self._kept = threading.local()

    def _fit(self, keep, columns, values, start=None) -> np.ndarray:
        family = self.family_model
        if start is None:
            start = np.zeros(int(keep.sum()))

        def sums(params):
            return self.source.map_designs(
                self.spec, restricted_sums, family, params, keep, columns, values
            )

        result = newton(family, [], start, tol=1e-10, max_iter=100, sums=sums)
        if not result.converged:
            fixed = ", ".join(
                f"{self.names[j]} = {v:g}" for j, v in zip(columns, values, strict=True)
            )
            raise EstimationError(
                f"the {'restricted fit with ' + fixed if fixed else 'unrestricted fit'} did not "
                "converge"
            )
        return result.params

    def restricted_fit(self, k, null_value) -> np.ndarray:
        columns = np.atleast_1d(np.asarray(k, dtype=np.intp))
        values = np.broadcast_to(np.asarray(null_value, dtype=float), columns.shape).copy()
        keep = np.ones(len(self.names), dtype=bool)
        keep[columns] = False
        params = np.empty(len(self.names))
        params[columns] = values
        if not keep.any():
            return params
        key = tuple(columns.tolist())
        start = self._restricted_start.get(key, self.estimate[keep])
        params[keep] = self._restricted_start[key] = self._fit(keep, columns, values, start)
        return params

    def restricted_fits(self, k: int, null_values: Sequence[float]) -> np.ndarray:
        """p x m restricted estimates, b_k fixed at each null value: one Newton loop per value
        (started at the last restricted estimate), their passes made together, then the score
        pieces at every estimate in one more pass (kept for ``p_values``)."""
        from concurrent.futures import ThreadPoolExecutor

        values = np.asarray(null_values, dtype=float).ravel()
        keep = np.ones(len(self.names), dtype=bool)
        keep[k] = False
        params = np.empty((len(self.names), values.size))
        params[k] = values
        if not keep.any() or values.size == 0:
            return params
        family = self.family_model
        start = _interpolated_starts(self._restricted_starts.get(k), values, self.estimate[keep])
        lockstep = _LockstepPasses(
            values.size,
            lambda asked: self.source.map_designs(
                self.spec, restricted_sums_many, family, asked, keep, k
            ),
        )

        def loop(j: int):
            try:
                return newton(
                    family, [], start[:, j].copy(), tol=1e-10, max_iter=100,
                    sums=lambda p: lockstep.sums(j, values[j], p),
                )  # fmt: skip
            finally:
                lockstep.finished()

        with ThreadPoolExecutor(max_workers=values.size) as pool:
            results = list(pool.map(loop, range(values.size)))
        for j, result in enumerate(results):
            if not result.converged:
                raise EstimationError(
                    f"the restricted fit with {self.names[k]} = {values[j]:g} did not converge"
                )
            params[keep, j] = result.params
        self._restricted_starts[k] = (values, params[keep])
        batch = {j: params[:, j] for j in range(values.size)}
        pieces = self.source.map_designs(
            self.spec, score_pieces_many, family, batch, self.n_clusters
        )
        self._kept.pieces = {params[:, j].tobytes(): pieces[j] for j in range(values.size)}
        return params

    def _pieces(self, params) -> dict:
        kept = getattr(self._kept, "pieces", {}).get(np.asarray(params).tobytes())
        if kept is not None:
            return kept
        return self.source.map_designs(
            self.spec, score_pieces, self.family_model, params, self.n_clusters
        )

    def partialled_scores_at(
        self, k: int, params: np.ndarray, slopes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each null's ``partialled_cluster_scores`` from its score pieces (kept by
        ``restricted_fits``): the G x m sums, and which nulls are separated (NaN columns)."""
        sums = np.full((self.n_clusters, params.shape[1]), np.nan)
        separated = np.zeros(params.shape[1], dtype=bool)
        for j in range(params.shape[1]):
            try:
                sums[:, j] = self.partialled_cluster_score_matrix([k], params[:, j])[:, 0]
            except SeparatedNull:
                separated[j] = True
        return sums, separated

    def partialled_cluster_score_matrix(
        self, columns: Sequence[int], params, gradients: np.ndarray | None = None
    ) -> np.ndarray:
        pieces = self._pieces(params)
        directions = self._directions(pieces["information"], columns, params, gradients)
        return pieces["cluster_sums"] @ directions

    def _cluster_robust_vcov(self) -> np.ndarray:
        pieces = self._pieces(self.estimate)
        bread = np.linalg.inv(pieces["information"])
        sums = pieces["cluster_sums"]
        G = self.n_clusters
        return G / (G - 1) * bread @ (sums.T @ sums) @ bread

    # --- smooth restrictions g(b) = c over the chunks (restriction_test and its set) -------------

    def _reparametrised_fit(self, pivots, keep, shift, slope, start) -> np.ndarray | None:
        """:meth:`constrained_fit`'s free coefficients by Newton steps over the chunks, each
        chunk's design reparametrised where it lies (``reparametrised_sums``)."""
        family = self.family_model

        def sums(params):
            return self.source.map_designs(
                self.spec, reparametrised_sums, family, params, keep, pivots, slope, shift
            )

        result = newton(family, [], np.array(start, dtype=float), tol=1e-10, max_iter=100,
                        sums=sums)  # fmt: skip
        return result.params if result.converged else None

    def _column_reach(self) -> np.ndarray:
        if not hasattr(self, "_reach"):
            found = self.source.map_designs(self.spec, column_reach)
            self._reach = np.max(np.vstack(found), axis=0)
        return self._reach

    def _scores_and_informations(self, params: np.ndarray, with_loglike: bool = False) -> tuple:
        """As in memory, over the chunks; the largest |linear index| is not summed over them
        (reported as zero: separation is then seen only as a singular information)."""
        found = self.source.map_designs(
            self.spec, scores_and_informations, self.family_model, np.asarray(params), with_loglike
        )
        return (found[0], np.zeros(params.shape[1]), *found[1:]) if with_loglike else found

    def _restricted_cluster_scores(
        self, restriction: Any, params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        _, gradient = _restriction_many(restriction, params)
        batch = {j: params[:, j] for j in range(params.shape[1])}
        pieces = self.source.map_designs(
            self.spec, score_pieces_many, self.family_model, batch, self.n_clusters
        )
        sums = np.full((self.n_clusters, params.shape[1]), np.nan)
        finite = np.zeros(params.shape[1], dtype=bool)
        for j in range(params.shape[1]):
            try:
                direction = np.linalg.solve(pieces[j]["information"], gradient[:, j])
            except np.linalg.LinAlgError:
                continue  # separated: no statistic at this null
            sums[:, j] = pieces[j]["cluster_sums"] @ direction
            finite[j] = True
        return sums, finite


def streamed_wild_bootstrap(
    fit, data, *, cluster: str | None = None, engine: str | None = None, scheduler=None, **options
) -> StreamedWildScoreBootstrap:
    """The bootstrap of a ``Fit`` over ``data`` streamed (a Parquet path) or on Dask."""
    from buzzpipe.estimate import engines, streamed

    cluster = cluster or fit.cluster_var
    if cluster is None:
        raise InputError(
            "the wild cluster bootstrap needs a cluster column",
            expected="cluster='<column>' or a fit with vcov={'cluster': '<column>'}",
        )
    engine = engines.check_engine(engine or engines.default_engine(data))
    source = engines.source_for(data, engine, scheduler=scheduler)
    offset = fit.offset if isinstance(fit.offset, str) or fit.offset is None else None
    if offset is None and fit.offset is not None:
        raise InputError("a streamed bootstrap takes the fit's offset from a column")
    roles = {"weights": fit.weights, "cluster": cluster, "offset": offset}
    spec, summary = streamed._specification(fit.formula, source, roles)
    spec, _family, _notes, _summary = streamed._prepare(
        spec, summary, get_family(fit.family), source
    )
    if spec.estimated_names != list(fit.x_names):
        raise InputError(
            "the data do not give the fit's design",
            value=spec.estimated_names,
            expected=", ".join(fit.x_names),
        )
    return StreamedWildScoreBootstrap(source, spec, fit.family, **options)
