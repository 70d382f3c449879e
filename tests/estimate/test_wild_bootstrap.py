"""Wild cluster score bootstrap: against a plain statsmodels implementation, draw by draw."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from bands import Claim, at_least, states, two_sided

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate.wild_bootstrap import (
    WildScoreBootstrap,
    clustered_inference,
    enumerate_draws,
    wild_score_bootstrap,
    wild_score_test,
)

WEBB = [-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)]


def clustered_sample(seed, n=600, n_clusters=5, effect=0.0, family="logit"):
    """A binary outcome with a cluster shock and a regressor with a cluster component."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(n_clusters, 4.0))
    clusters = rng.choice(n_clusters, size=n, p=shares)
    clusters[:n_clusters] = np.arange(n_clusters)  # every cluster present
    regressor = rng.normal(size=n) + 0.7 * rng.normal(size=n_clusters)[clusters]
    X = np.column_stack([np.ones(n), regressor, rng.normal(size=n), rng.integers(0, 2, n)])
    index = X @ np.array([-0.2, effect, 0.3, 0.2]) + 0.3 * rng.normal(size=n_clusters)[clusters]
    if family == "logit":
        prob = 1 / (1 + np.exp(-index))
    else:
        from scipy.stats import norm

        prob = norm.cdf(index)
    y = (rng.random(n) < prob).astype(float)
    return X, y, clusters


def plain_score_bootstrap(X, y, clusters, k, null_value, points, family="logit", freq=None):
    """Reference: statsmodels restricted fit, its scores and Hessian, a loop over every draw."""
    model_class = sm.Logit if family == "logit" else sm.Probit
    if freq is not None:  # integer weights = replicated rows
        X, y, clusters = (np.repeat(a, freq, axis=0) for a in (X, y, clusters))
    keep = [j for j in range(X.shape[1]) if j != k]
    params = np.empty(X.shape[1])
    if keep:
        restricted = model_class(y, X[:, keep], offset=null_value * X[:, k]).fit(
            disp=0, method="newton", tol=1e-14, maxiter=100
        )
        params[keep] = restricted.params
    params[k] = null_value
    full_model = model_class(y, X)
    scores = full_model.score_obs(params)
    information = -full_model.hessian(params)
    partialled = scores @ np.linalg.solve(information, np.eye(X.shape[1])[:, k])
    return plain_statistics(partialled, clusters, points)


def plain_statistics(partialled, clusters, points):
    """t(1), t(v) for every enumerated draw v and the inclusive p, from the partialled scores
    of each row, in a plain loop (the algorithm of the module docstring, steps 4-6)."""
    labels = np.unique(clusters)
    G = len(labels)
    sums = np.array([partialled[clusters == g].sum() for g in labels])
    shares = np.array([np.mean(clusters == g) for g in labels])

    def statistic(v):
        v = np.asarray(v)
        numerator = np.sum(v * sums)
        recentred = v * sums - shares * numerator
        return numerator / math.sqrt(G / (G - 1) * np.sum(recentred**2))

    actual = statistic(np.ones(G))
    draws = np.array([statistic(v) for v in itertools.product(points, repeat=G)])
    p_value = np.mean(np.abs(draws) >= abs(actual) * (1 - 1e-10))
    return actual, draws, p_value


@pytest.mark.parametrize(
    ("family", "weight_type", "null_value", "seed"),
    [
        ("logit", "webb", 0.0, 1),
        ("logit", "rademacher", 0.0, 2),
        ("logit", "webb", 0.25, 3),
        ("probit", "webb", 0.0, 4),
        ("probit", "rademacher", -0.1, 5),
    ],
)
def test_matches_plain_statsmodels_loop_over_every_draw(family, weight_type, null_value, seed):
    X, y, clusters = clustered_sample(seed, family=family, effect=0.15)
    result = wild_score_test(
        X, y, clusters, 1, null_value, family=family, weight_type=weight_type, draws=9999
    )
    points = WEBB if weight_type == "webb" else [-1.0, 1.0]
    actual, draws, p_value = plain_score_bootstrap(X, y, clusters, 1, null_value, points, family)
    assert result.enumerated
    assert result.statistic == pytest.approx(actual, rel=1e-8, abs=1e-10)
    # same draws in the same order (itertools.product order)
    np.testing.assert_allclose(result.distribution, draws, rtol=1e-7, atol=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-12)


def test_integer_weights_equal_replicated_rows():
    X, y, clusters = clustered_sample(11, n=300, effect=0.2)
    freq = np.random.default_rng(0).integers(1, 4, size=len(y))
    weighted = wild_score_test(X, y, clusters, 1, 0.0, weights=freq.astype(float))
    actual, draws, p_value = plain_score_bootstrap(X, y, clusters, 1, 0.0, WEBB, freq=freq)
    assert weighted.statistic == pytest.approx(actual, rel=1e-8)
    assert weighted.p_value == pytest.approx(p_value, abs=1e-12)


def test_five_clusters_rademacher_cannot_reach_five_percent():
    X, y, clusters = clustered_sample(21, effect=2.0)  # a huge effect still cannot give p < 1/16
    result = wild_score_test(X, y, clusters, 1, 0.0, weight_type="rademacher")
    assert result.n_draws == 32 and result.enumerated
    assert len(np.unique(np.round(np.abs(result.distribution), 10))) <= 16
    assert result.smallest_p_value == pytest.approx(1 / 16)
    assert result.p_value >= 1 / 16
    text = result.summary()
    assert "5% level is impossible" in text
    assert "Tie convention" in text and "0.0625" in text
    # Webb weights on the same data can reject
    webb = wild_score_test(X, y, clusters, 1, 0.0)
    assert webb.weight_type == "webb" and webb.n_draws == 6**5
    assert webb.p_value < 0.05
    assert "impossible" not in webb.summary()


def test_default_weights_and_enumeration_rule():
    X, y, clusters = clustered_sample(31, n=900, n_clusters=12)
    sampled = WildScoreBootstrap(X, y, clusters, draws=999)
    assert sampled.weight_type == "rademacher" and not sampled.enumerated
    assert sampled.n_draws == 999 and sampled.smallest_p_value == pytest.approx(1 / 999)
    enumerated = WildScoreBootstrap(X, y, clusters, draws=4096)  # 2^12 = 4096 is not above B
    assert enumerated.enumerated and enumerated.n_draws == 4096
    X, y, clusters = clustered_sample(31, n=900, n_clusters=11)
    assert WildScoreBootstrap(X, y, clusters).weight_type == "webb"
    draws = enumerate_draws(3, "rademacher")
    assert draws.shape == (3, 8) and len({tuple(c) for c in draws.T}) == 8


def test_sampled_draws_depend_on_seed_only():
    X, y, clusters = clustered_sample(41, n=900, n_clusters=15)
    first = wild_score_test(X, y, clusters, 1, 0.0, draws=499, seed=7)
    again = wild_score_test(X, y, clusters, 1, 0.0, draws=499, seed=7)
    other = wild_score_test(X, y, clusters, 1, 0.0, draws=499, seed=8)
    np.testing.assert_array_equal(first.distribution, again.distribution)
    assert not np.array_equal(first.distribution, other.distribution)
    rademacher = WildScoreBootstrap(X, y, clusters, draws=499, seed=7).draws
    assert set(np.unique(rademacher)) == {-1.0, 1.0}


def test_confidence_set_bounds_are_where_p_crosses_alpha():
    X, y, clusters = clustered_sample(51, n=1200, n_clusters=8, effect=0.3)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    interval = bootstrap.confidence_set(1, alpha=0.05)
    assert interval.bounded and not interval.disjoint
    (lower, upper) = interval.intervals[0]
    assert lower < bootstrap.estimate[1] < upper
    assert [bound for bound, _, _ in interval.bound_p_values] == [lower, upper]
    for _bound, p_inside, p_outside in interval.bound_p_values:
        assert p_outside <= 0.05 < p_inside
        # p is a step function with steps of 1/B: at a bound it jumps across alpha by one step
        assert abs(p_inside - 0.05) < 1e-3 and abs(p_outside - 0.05) < 1e-3
    # p crosses alpha within the inversion's tolerance (1e-7 s.e.) of each bound
    step = 1e-7 * bootstrap.cluster_robust_se(1)
    assert bootstrap.p_value(1, lower + step) > 0.05 >= bootstrap.p_value(1, lower - step)
    assert bootstrap.p_value(1, upper - step) > 0.05 >= bootstrap.p_value(1, upper + step)
    assert "confidence set" in interval.summary()
    record = json.loads(json.dumps(interval.as_record()))
    assert record["intervals"] == [[lower, upper]] and record["bounded"]
    test_record = json.loads(json.dumps(bootstrap.test(1, 0.0).as_record()))
    assert test_record["inference"] == "wild cluster score bootstrap"
    assert test_record["weight_type"] == "webb" and test_record["notes"]


def test_confidence_set_is_unbounded_when_no_draw_can_reject():
    X, y, clusters = clustered_sample(61, effect=0.3)
    bootstrap = WildScoreBootstrap(X, y, clusters, weight_type="rademacher")
    interval = bootstrap.confidence_set(1)
    assert interval.intervals == [(-math.inf, math.inf)]
    assert interval.as_record()["intervals"] == [[None, None]]
    assert not interval.bounded
    assert "smallest attainable p-value" in interval.summary()


def test_detects_a_real_effect_and_not_a_null_one():
    X, y, clusters = clustered_sample(71, n=1600, n_clusters=10, effect=0.8)
    assert wild_score_test(X, y, clusters, 1, 0.0).p_value < 0.01
    assert wild_score_test(X, y, clusters, 1, 0.8).p_value > 0.05


def test_a_model_with_one_coefficient_needs_no_restricted_fit():
    X, y, clusters = clustered_sample(101, n=500, n_clusters=6)
    result = wild_score_test(X[:, :1], y, clusters, 0, 0.0, draws=6**6)  # enumerate all
    actual, draws, p_value = plain_score_bootstrap(X[:, :1], y, clusters, 0, 0.0, WEBB)
    assert result.statistic == pytest.approx(actual, rel=1e-8)
    assert result.p_value == pytest.approx(p_value, abs=1e-12)


def test_bad_input_is_one_clear_error():
    X, y, clusters = clustered_sample(81)
    with pytest.raises(InputError, match="logit or probit"):
        WildScoreBootstrap(X, y, clusters, family="ologit")
    with pytest.raises(InputError, match="webb or rademacher"):
        WildScoreBootstrap(X, y, clusters, weight_type="mammen")
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        WildScoreBootstrap(X, y, np.zeros(len(y)))
    with pytest.raises(InputError, match="no such term"):
        WildScoreBootstrap(X, y, clusters, names=["a", "b", "c", "d"]).test("breadth", 0.0)


def survey_frame(seed, n=800):
    rng = np.random.default_rng(seed)
    regions = np.array(["Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand"])
    frame = pd.DataFrame(
        {
            "region": regions[rng.choice(5, n, p=[0.46, 0.19, 0.15, 0.12, 0.08])],
            "breadth_international": rng.integers(0, 7, n).astype(float),
            "employees": np.exp(rng.normal(4, 1, n)),
            "industry": rng.choice(["manufacturing", "retail", "services"], n),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    index = -0.5 + 0.2 * frame["breadth_international"]
    frame["product"] = (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)
    return frame


@pytest.mark.filterwarnings("ignore:only 5 clusters")
def test_core_fit_entry_point_agrees_with_the_core():
    from buzzpipe.estimate import fit

    frame = survey_frame(1)
    formula = "product ~ breadth_international + np.log(employees) + C(industry)"
    model = fit(formula, frame, family="logit", vcov={"cluster": "region"})
    bootstrap = wild_score_bootstrap(model, frame)
    np.testing.assert_allclose(bootstrap.estimate, model.params.to_numpy(), atol=1e-7)
    term = "breadth_international"
    assert bootstrap.cluster_robust_se(term) == pytest.approx(model.bse[term], rel=1e-7)
    arrays = WildScoreBootstrap(
        sm.add_constant(frame[["breadth_international"]]).assign(
            log_employees=np.log(frame["employees"]),
            retail=(frame["industry"] == "retail").astype(float),
            services=(frame["industry"] == "services").astype(float),
        ),
        frame["product"],
        frame["region"],
    )
    assert bootstrap.test(term).p_value == pytest.approx(arrays.test(1).p_value, abs=1e-12)
    with pytest.raises(InputError, match="cluster column"):
        wild_score_bootstrap(fit(formula, frame, family="logit"), frame)


@pytest.mark.filterwarnings("ignore:only")
def test_clustered_inference_says_which_test_it_reports_and_why():
    from buzzpipe.estimate import fit

    frame = survey_frame(2, n=1200)
    formula = "product ~ breadth_international + np.log(employees)"
    few = fit(formula, frame, family="logit", vcov={"cluster": "region"})
    record = json.loads(json.dumps(clustered_inference(few, frame, "breadth_international")))
    assert record["reported"] == "wild cluster score bootstrap"
    assert "only 5 clusters" in record["why"] and "over-rejects" in record["why"]
    assert record["wald"]["p_value"] == pytest.approx(few.pvalues["breadth_international"])
    assert record["bootstrap"]["weight_type"] == "webb"
    assert record["bootstrap"]["confidence_set"]["bounded"]
    frame["firm_group"] = np.arange(len(frame)) % 60
    many = fit(formula, frame, family="logit", vcov={"cluster": "firm_group"})
    record = clustered_inference(many, frame, "breadth_international")
    assert record["reported"] == "cluster-robust Wald" and "bootstrap" not in record
    with pytest.raises(InputError, match="no such term"):
        clustered_inference(few, frame, "breadth_national")


class KnownPValues(WildScoreBootstrap):
    """The inversion logic on a p-value function whose acceptance set is known exactly."""

    def __init__(self, accepted_intervals, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.accepted_intervals = accepted_intervals

    def cluster_robust_se(self, term):
        return 1.0

    def p_value(self, term, null_value, alternative="two-sided"):
        assert alternative == "two-sided"
        inside = any(low < null_value < high for low, high in self.accepted_intervals)
        return 0.5 if inside else 0.01

    def p_values(self, term, null_values, alternative="two-sided"):  # several at a time
        return np.array([self.p_value(term, value, alternative) for value in null_values])

    def _inversion(self, k, null_values, alternative):
        """p, the statistic (the null itself, or constant beyond ``flat_beyond``: the tail where
        it no longer moves with the null) and the draws' excess over it:
        one draw, whose excess is the signed distance to the set's nearest end (it counts, so
        p > alpha, exactly inside), or none (no guess: the inversion halves its brackets)."""
        p = self.p_values(k, null_values, alternative)
        values = np.asarray(null_values, dtype=float)
        excess = None
        if self.continuous_margin:
            ends = np.array([end for pair in self.accepted_intervals for end in pair])
            distance = np.abs(values[:, None] - ends[None, :]).min(axis=1)
            excess = np.where(p > 0.05, distance, -distance)[:, None]
        statistic = np.clip(values, *getattr(self, "flat_beyond", (-np.inf, np.inf)))
        return p, statistic, [None] * len(values) if excess is None else excess


@pytest.mark.parametrize("continuous_margin", [True, False])
@pytest.mark.parametrize(
    "accepted",
    [
        [(-1.5, 2.0)],  # an ordinary interval
        [(-3.0, -1.0), (1.0, 2.5)],  # disjoint
        [(-2.0, math.inf)],  # unbounded above
    ],
)
def test_inversion_reports_the_acceptance_set_as_it_is(accepted, continuous_margin):
    X, y, clusters = clustered_sample(91, n=400, n_clusters=8)
    bootstrap = KnownPValues(accepted, X, y, clusters)
    bootstrap.continuous_margin = continuous_margin
    centre = bootstrap.estimate[1]
    shifted = [(low + centre, high + centre) for low, high in accepted]
    bootstrap.accepted_intervals = shifted
    found = bootstrap.confidence_set(1)
    assert len(found.intervals) == len(shifted)
    for (low, high), (true_low, true_high) in zip(found.intervals, shifted, strict=True):
        assert low == pytest.approx(true_low, abs=1e-6)
        assert (high == math.inf) if true_high == math.inf else high == pytest.approx(true_high)
    assert found.disjoint == (len(accepted) > 1)
    assert found.bounded == all(math.isfinite(v) for pair in accepted for v in pair)
    if found.disjoint:
        assert "disjoint" in found.summary()
    if not found.bounded:
        assert "unbounded" in found.summary()


@pytest.mark.parametrize(
    ("accepted", "flat_beyond", "reported"),
    [
        # the statistic stops moving below -2: the first piece's upper end (-3) is undetermined,
        # the piece reaches upwards past it and swallows the second one
        ([(-math.inf, -3.0), (1.0, 2.5)], (-2.0, math.inf), [(-math.inf, math.inf)]),
        # below -1.5: the lower end (-2) is undetermined, the upper one (2.5) is not
        ([(-2.0, 2.5)], (-1.5, math.inf), [(-math.inf, 2.5)]),
        # stopped above 1: the upper end (2) is undetermined, the lower one (-1.5) is not
        ([(-1.5, 2.0)], (-math.inf, 1.0), [(-1.5, math.inf)]),
        # moving everywhere: nothing changes
        ([(-1.5, 2.0)], (-math.inf, math.inf), [(-1.5, 2.0)]),
    ],
)
def test_an_end_where_the_statistic_no_longer_moves_is_reported_unbounded(
    accepted, flat_beyond, reported
):
    """An end found where the statistic changes by less than FLAT_TAIL of itself over a
    standard error beyond it is numerically undetermined: the set reaches infinity past it
    (pieces that then overlap are joined), its p-values are dropped and a note says why."""
    X, y, clusters = clustered_sample(91, n=400, n_clusters=8)
    bootstrap = KnownPValues(accepted, X, y, clusters)
    bootstrap.continuous_margin = True
    centre = bootstrap.estimate[1]
    bootstrap.accepted_intervals = [(low + centre, high + centre) for low, high in accepted]
    bootstrap.flat_beyond = tuple(v + centre for v in flat_beyond)
    found = bootstrap.confidence_set(1)
    expected = [(low + centre, high + centre) for low, high in reported]
    assert len(found.intervals) == len(expected)
    for (low, high), (true_low, true_high) in zip(found.intervals, expected, strict=True):
        assert low == pytest.approx(true_low, abs=1e-6)
        assert high == pytest.approx(true_high, abs=1e-6)
    changed = reported != accepted
    assert bool(found.undetermined_ends) == changed
    assert any("numerically undetermined" in note for note in found.notes) == changed
    ends = {v for pair in found.intervals for v in pair}
    assert all(bound in ends for bound, _, _ in found.bound_p_values)
    assert found.as_record()["undetermined_ends"] == [list(end) for end in found.undetermined_ends]


def plain_joint_score_bootstrap(X, y, clusters, columns, null_values, points, family="logit"):
    """Reference for joint tests: statsmodels restricted fit, then a loop over every draw.

    For each draw v: N = sum_g v_g S_g, J_g = v_g S_g - pi_g N, D = G/(G-1) sum_g J_g J_g',
    W = N' D^{-1} N, with S_g the cluster sums of the scores projected on H^{-1} R'.
    """
    model_class = sm.Logit if family == "logit" else sm.Probit
    keep = [j for j in range(X.shape[1]) if j not in columns]
    restricted = model_class(y, X[:, keep], offset=X[:, columns] @ np.asarray(null_values)).fit(
        disp=0, method="newton", tol=1e-14, maxiter=100
    )
    params = np.empty(X.shape[1])
    params[keep] = restricted.params
    params[columns] = null_values
    full_model = model_class(y, X)
    directions = np.linalg.solve(-full_model.hessian(params), np.eye(X.shape[1])[:, columns])
    partialled = full_model.score_obs(params) @ directions
    labels = np.unique(clusters)
    G = len(labels)
    sums = [partialled[clusters == g].sum(axis=0) for g in labels]
    shares = [np.mean(clusters == g) for g in labels]

    def statistic(v):
        numerator = sum(v[g] * sums[g] for g in range(G))
        middle = np.zeros((len(columns), len(columns)))
        for g in range(G):
            deviation = v[g] * sums[g] - shares[g] * numerator
            middle += np.outer(deviation, deviation)
        middle *= G / (G - 1)
        return float(numerator @ np.linalg.solve(middle, numerator))

    actual = statistic(np.ones(G))
    draws = np.array([statistic(v) for v in itertools.product(points, repeat=G)])
    p_value = np.mean(np.sqrt(draws) >= math.sqrt(actual) * (1 - 1e-10))
    return actual, draws, p_value


@pytest.mark.parametrize(
    ("family", "weight_type", "columns", "null_values", "seed"),
    [
        ("logit", "webb", [1, 2], [0.0, 0.0], 31),
        ("logit", "rademacher", [1, 2, 3], [0.1, 0.3, 0.0], 32),
        ("probit", "webb", [1, 3], [0.0, 0.2], 33),
    ],
)
def test_joint_test_matches_plain_loop_over_every_draw(
    family, weight_type, columns, null_values, seed
):
    X, y, clusters = clustered_sample(seed, family=family, effect=0.15)
    bootstrap = WildScoreBootstrap(X, y, clusters, family=family, weight_type=weight_type)
    result = bootstrap.joint_test(columns, null_values)
    points = WEBB if weight_type == "webb" else [-1.0, 1.0]
    actual, draws, p_value = plain_joint_score_bootstrap(
        X, y, clusters, columns, null_values, points, family
    )
    assert result.enumerated and result.restrictions == len(columns)
    assert result.statistic == pytest.approx(actual, rel=1e-7)
    np.testing.assert_allclose(result.distribution, draws, rtol=1e-7, atol=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-12)
    np.testing.assert_allclose(result.restricted_params[columns], null_values)


def test_joint_test_of_one_restriction_is_the_squared_single_test():
    X, y, clusters = clustered_sample(34, n_clusters=7, effect=0.1)
    bootstrap = WildScoreBootstrap(X, y, clusters, draws=999, seed=3)  # 6^7 > 999: sampled
    single = bootstrap.test(2, 0.1)
    joint = bootstrap.joint_test([2], 0.1)
    assert not joint.enumerated
    assert joint.statistic == pytest.approx(single.statistic**2, rel=1e-10)
    np.testing.assert_allclose(joint.distribution, single.distribution**2, rtol=1e-9)
    assert joint.p_value == single.p_value


JOINT_SEEDS = 450
JOINT_SIZE = Claim(
    "joint 5% tests rejecting two true restrictions",
    two_sided(JOINT_SEEDS, 0.05),
    0.05,
    (("size 10%", 0.10), ("size 1%", 0.01)),
)
JOINT_POWER = Claim(
    "joint 5% tests rejecting two false ones (measured power 0.999)",
    at_least(JOINT_SEEDS, 0.99),
    0.99,
    (("power 0.90", 0.90),),
)


@states(JOINT_SIZE, JOINT_POWER)
def test_joint_test_detects_a_joint_effect_and_not_a_null_one():
    """450 samples of 800 firms in 12 clusters, 399 draws each (measured: 24 null rejections;
    over 1,000 seeds 6.6%, the few-clusters excess of a 12-cluster design).

    joint 5% tests rejecting two true restrictions: 12 to 35 of 450; correct (0.05) passes with
    probability 0.990; size 10% fails with probability 0.936; size 1% fails with probability 0.997.
    joint 5% tests rejecting two false ones (measured power 0.999): at least 440 of 450; correct
    (0.99) passes with probability 0.993; power 0.90 fails with probability 0.999.
    """
    rejected_null = rejected_effect = 0
    for seed in range(JOINT_SEEDS):
        X, y, clusters = clustered_sample(100 + seed, n=800, n_clusters=12, effect=0.0)
        bootstrap = WildScoreBootstrap(X, y, clusters, draws=399, seed=seed)
        rejected_null += bootstrap.joint_test([1, 3], [0.0, 0.2]).p_value <= 0.05  # both true
        rejected_effect += bootstrap.joint_test([1, 3], [0.6, -0.4]).p_value <= 0.05  # both false
    JOINT_SIZE.band.check(rejected_null, "rejected two true restrictions")
    JOINT_POWER.band.check(rejected_effect, "rejected two false restrictions")


def test_joint_test_refuses_more_restrictions_than_clusters_allow():
    X, y, clusters = clustered_sample(35, n_clusters=3)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    with pytest.raises(EstimationError, match="needs at least 4 clusters"):
        bootstrap.joint_test([1, 2, 3])
    with pytest.raises(InputError, match="distinct"):
        bootstrap.joint_test([1, 1])
    record = bootstrap.joint_test(["x1", "x2"]).as_record()
    assert record["restrictions"] == 2 and record["terms"] == ["x1", "x2"]
    assert "Joint test of 2 restrictions" in record["notes"][0]
    json.dumps(record)


def test_enumerated_webb_smallest_p_is_six_constant_draws():
    """The six constant Webb vectors c 1 give t(c 1) = sign(c) t(1): they always tie."""
    X, y, clusters = clustered_sample(21, effect=2.0)
    bootstrap = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    assert bootstrap.enumerated and bootstrap.smallest_p_value == pytest.approx(6 / 6**5)
    result = bootstrap.test(1, 0.0)
    constant = np.flatnonzero(np.ptp(bootstrap.draws, axis=0) == 0)
    assert len(constant) == 6
    np.testing.assert_allclose(
        np.abs(result.distribution[constant]), abs(result.statistic), rtol=1e-12
    )
    assert result.p_value >= 6 / 6**5
    # the strict rule (boottest's) drops exactly those six ties here
    strict = WildScoreBootstrap(X, y, clusters, weight_type="webb", tie_rule="strict")
    assert strict.smallest_p_value == 0.0
    assert result.p_value - strict.test(1, 0.0).p_value == pytest.approx(6 / 6**5, abs=1e-12)


def test_strict_rule_with_five_rademacher_clusters_says_the_level_is_not_five_percent():
    X, y, clusters = clustered_sample(21, effect=2.0)
    result = wild_score_test(X, y, clusters, 1, 0.0, weight_type="rademacher", tie_rule="strict")
    assert result.p_value == 0.0 and result.smallest_p_value == 0.0
    assert result.resolution == pytest.approx(1 / 16)
    text = result.summary()
    assert "|t*| > |t|" in text and "rejects a true null about 0.0625" in text
    record = result.as_record()
    assert record["tie_rule"] == "strict" and record["small_sample"] is True


def test_conventions_are_checked():
    X, y, clusters = clustered_sample(1)
    with pytest.raises(InputError):
        WildScoreBootstrap(X, y, clusters, convention="stata")
    with pytest.raises(InputError):
        WildScoreBootstrap(X, y, clusters, tie_rule="greater")
    boottest = WildScoreBootstrap(X, y, clusters, convention="boottest", small_sample=True)
    assert boottest.small_sample and boottest.tie_rule == "strict"
    assert (
        "No G/(G-1) factor" in wild_score_test(X, y, clusters, 1, convention="boottest").summary()
    )


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_p_value_matches_plain_loop_and_its_bound(alternative):
    X, y, clusters = clustered_sample(3, effect=0.25)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    result = bootstrap.test(1, 0.0, alternative)
    actual, draws, _ = plain_score_bootstrap(X, y, clusters, 1, 0.0, WEBB)
    sign = 1.0 if alternative == "greater" else -1.0
    expected = np.mean(sign * draws >= sign * actual - 1e-10 * abs(actual))
    assert result.p_value == pytest.approx(expected, abs=1e-12)
    assert result.as_record()["alternative"] == alternative
    # the three positive constant Webb vectors always tie: one-sided p >= 3/6^5
    assert result.p_value >= 3 / 6**5
    found = bootstrap.confidence_set(1, 0.05, alternative=alternative)
    (low, high), *_ = found.intervals
    assert len(found.intervals) == 1
    assert (high == math.inf) if alternative == "greater" else (low == -math.inf)
    for _, p_inside, p_outside in found.bound_p_values:
        assert p_inside > 0.05 >= p_outside
    # consistent with the p-value: 0 outside the one-sided set exactly when p(0) <= 5%
    assert (result.p_value <= 0.05) == (not low <= 0.0 <= high)
    assert "One-sided" in found.notes[0]


def test_one_sided_p_values_add_up_with_ties():
    X, y, clusters = clustered_sample(21, effect=2.0)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    greater = bootstrap.test(1, 0.0, "greater").p_value
    less = bootstrap.test(1, 0.0, "less").p_value
    # t > 0 here: the three positive constant vectors count in "greater", the others in neither
    assert bootstrap.test(1, 0.0).statistic > 0
    assert greater + less == pytest.approx(1 + 3 / 6**5, abs=1e-12)
    with pytest.raises(InputError):
        bootstrap.test(1, 0.0, "bigger")


@pytest.mark.parametrize("weight_type", ["webb", "rademacher"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_p_values_from_half_the_enumerated_draws_equal_all_of_them(weight_type, alternative):
    """Enumerated draws come in pairs v, -v with t(-v) = -t(v): the p-values of the confidence
    set's inversion read half of them and negate, and equal those of every draw."""
    X, y, clusters = clustered_sample(8, n=500, n_clusters=5, effect=0.2)
    bootstrap = WildScoreBootstrap(X, y, clusters, weight_type=weight_type)
    assert bootstrap.enumerated and bootstrap._sign_half().shape[1] * 2 == bootstrap.n_draws
    # not at the estimate itself, where the scores are rounding noise (and p is about 1)
    grid = bootstrap.estimate[1] + np.linspace(-1.5, 1.5, 20)
    halved = bootstrap.p_values(1, grid, alternative)
    bootstrap._restricted_starts.clear()  # the restricted fits start where they started before
    bootstrap._sign_half = lambda: None  # every draw
    assert np.array_equal(halved, bootstrap.p_values(1, grid, alternative))
    assert halved.min() < 0.1 < 0.25 < halved.max()  # the grid spans rejections and acceptances


def test_a_separated_restricted_fit_is_an_estimation_error_not_an_internal_one():
    """A null far enough out saturates every row of a dummy's ones (fitted probability exactly 1,
    curvature exactly 0): the information is singular, and the error says so as an estimation
    error (a study part leaves a note) rather than numpy's LinAlgError (an internal error)."""
    X, y, clusters = clustered_sample(3, n=400, n_clusters=5)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    params = bootstrap.estimate.copy()
    params[3] = 1000.0  # column 3 is a 0/1 dummy
    with pytest.raises(EstimationError, match="separated: its information is singular"):
        bootstrap.partialled_cluster_score_matrix([3], params)


def test_the_scores_of_many_nulls_are_each_nulls_own_and_say_which_are_separated():
    """Test inversion's partialled scores of every null at once equal those of each null alone
    (to rounding: one product for all), and a null whose information is singular is flagged
    separated, its column NaN, without disturbing the others."""
    X, y, clusters = clustered_sample(3, n=400, n_clusters=5)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    params = np.repeat(bootstrap.estimate[:, None], 4, axis=1)
    params[3] += np.array([-0.5, 0.0, 1000.0, 0.5])  # column 3 is a 0/1 dummy: 1000 saturates it
    sums, separated = bootstrap.partialled_scores_at(3, params)
    assert separated.tolist() == [False, False, True, False]
    assert np.isnan(sums[:, 2]).all()
    for j in (0, 1, 3):
        alone = bootstrap.partialled_cluster_scores(3, params[:, j])
        np.testing.assert_allclose(sums[:, j], alone, rtol=1e-12, atol=1e-12 * np.abs(alone).max())


def test_a_confidence_set_accepts_the_nulls_whose_restricted_fit_is_separated():
    """No score statistic exists where the restricted fit separates (singular information):
    p_values gives NaN there, and the inversion cannot reject such a null, so it is accepted
    and the set says so; the other values are inverted as before."""
    X, y, clusters = clustered_sample(8, n=500, n_clusters=5, effect=0.2)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    plain = bootstrap.confidence_set(1)
    far = bootstrap.estimate[1] + 15 * bootstrap.cluster_robust_se(1)
    scores_at = bootstrap.partialled_scores_at

    def separated_beyond(k, params, slopes=None, **options):  # singular beyond ``far``
        sums, separated = scores_at(k, params, slopes, **options)
        beyond = params[k] > far
        sums[:, beyond] = np.nan
        return sums, separated | beyond

    bootstrap.partialled_scores_at = separated_beyond
    grid = np.array([far - 1.0, far + 1.0])
    assert np.isnan(bootstrap.p_values(1, grid)).tolist() == [False, True]
    found = bootstrap.confidence_set(1)
    assert math.isfinite(plain.intervals[-1][1]) and plain.intervals[-1][1] < far
    assert found.intervals[-1][1] == math.inf  # the separated far end is accepted
    # the same bound to the inversion's tolerance (1e-7 s.e.): its restricted fits started
    # from the first run's, so the root finder's points differ by rounding
    tolerance = 1e-7 * bootstrap.cluster_robust_se(1)
    assert found.intervals[0] == pytest.approx(plain.intervals[0], abs=tolerance)
    assert any("separated at" in note for note in found.notes)


def test_the_compiled_statistics_of_many_nulls_are_a_plain_loops():
    """``statistics`` on a G x m matrix (compiled, wild_kernels.score_statistics) gives, for
    every null and draw, t(v) = N(v) / sqrt(G/(G-1) sum_g (v_g S_g - pi_g N(v))^2) as a plain
    Python loop computes it, to rounding; a null whose scores are all zero gives NaN, as
    numpy's 0 / 0 does."""
    X, y, clusters = clustered_sample(7, n=300, n_clusters=6)
    wild = WildScoreBootstrap(X, y, clusters, draws=199, weight_type="webb", seed=3)
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(wild.n_clusters, 4))
    scores[:, 2] = 0.0
    found = wild.statistics(scores, wild.draws)
    G, shares = wild.n_clusters, wild.cluster_share
    for j in range(scores.shape[1]):
        for b in range(wild.draws.shape[1]):
            v = wild.draws[:, b]
            numerator = sum(v[g] * scores[g, j] for g in range(G))
            squares = sum((v[g] * scores[g, j] - shares[g] * numerator) ** 2 for g in range(G))
            if j == 2:
                assert math.isnan(found[j, b])
            else:
                expected = numerator / math.sqrt(G / (G - 1) * squares)
                assert found[j, b] == pytest.approx(expected, rel=1e-12, abs=1e-14)
    single = wild.statistics(scores[:, 0], wild.draws)
    np.testing.assert_allclose(found[0], single, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("tie_rule", ["inclusive", "strict"])
@pytest.mark.parametrize("halved", [True, False])
def test_the_compiled_counts_are_the_p_values_of_the_statistics(alternative, tie_rule, halved):
    """``wild_kernels.score_counts`` (each null's draws computed and counted in one pass, no
    m x B array) gives the p-values that ``_p_values`` / ``_p_values_halved`` give from the
    whole array of statistics, exactly: on random scores, a null whose statistic is rounding
    noise (zeroed with the draws below ZERO_STATISTIC), a null with all scores zero (NaN
    draws), draws tying the statistic (the constant weights) and a scaled copy of a null (the
    same draws to rounding)."""
    from buzzpipe.estimate import wild_bootstrap as wb
    from buzzpipe.estimate.wild_kernels import score_counts

    X, y, clusters = clustered_sample(7, n=300, n_clusters=5)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb", tie_rule=tie_rule)
    assert wild.enumerated
    draws = wild._sign_half() if halved else wild.draws
    rng = np.random.default_rng(11)
    scores = rng.normal(size=(wild.n_clusters, 9))
    scores[:, 2] = 0.0
    scores[:, 3] = scores[:, 6] - scores[:, 6].mean()  # N(1) = 0 to rounding: t is noise
    scores[:, 4] = 3.0 * scores[:, 0]
    scores[:, 5] = -scores[:, 1]
    statistic = wild.statistics(scores, np.ones((wild.n_clusters, 1)))[:, 0]
    assert abs(statistic[3]) < wb.ZERO_STATISTIC and np.isnan(statistic[2])
    distribution = wild.statistics(scores, draws)
    if halved:
        expected = wb._p_values_halved(statistic, distribution, tie_rule, alternative)
    else:
        expected = wb._p_values(statistic, distribution, tie_rule, alternative)
    counts = score_counts(
        scores, np.ascontiguousarray(draws), wild.cluster_share, float(wild.variance_factor),
        statistic, wb._orientation(alternative), tie_rule == "strict", halved,
        wb.ZERO_STATISTIC, wb.TIE_TOLERANCE, np.empty(scores.shape[1], dtype=np.int64),
    )  # fmt: skip
    found = counts / (draws.shape[1] * (2 if halved else 1))
    found[~np.isfinite(statistic)] = np.nan
    np.testing.assert_array_equal(found, expected)
    # and as the plain loop of bootstrap_p_value counts them, null by null
    for j in np.flatnonzero(np.isfinite(statistic)):
        row = np.concatenate([distribution[j], -distribution[j]]) if halved else distribution[j]
        assert found[j] == wild.bootstrap_p_value(statistic[j], row, tie_rule, alternative)


def test_the_compiled_cluster_sums_are_bincounts_bit_for_bit():
    """``wild_kernels.cluster_products`` sums each column's products into its clusters as
    ``np.bincount`` of the column of products does, bit for bit, for the columns asked (the
    others untouched)."""
    from buzzpipe.estimate.wild_kernels import cluster_products

    rng = np.random.default_rng(3)
    n, m, G = 1000, 6, 7
    codes = rng.integers(0, G, n).astype(np.int64)
    left, right = rng.normal(size=(n, m)) * 1e3, rng.normal(size=(n, m)) ** 3
    out = np.full((G, m), np.nan)
    cluster_products(codes, left, right, np.array([0, 2, 3, 5], dtype=np.int64), out)
    for j in range(m):
        if j in (1, 4):
            assert np.isnan(out[:, j]).all()
        else:
            expected = np.bincount(codes, weights=left[:, j] * right[:, j], minlength=G)
            np.testing.assert_array_equal(out[:, j], expected)


def test_the_first_batch_of_restricted_fits_started_on_the_tangent_are_the_constrained_maxima():
    """A column's first batch of restricted fits (a set's grid) starts its inner part on the
    polynomial of the restricted estimates' path at the estimate, its far part on the
    tangent: each fit is still the constrained maximum, as statsmodels' Newton fit with b_k
    in the offset finds it, inner and far nulls alike."""
    X, y, clusters = clustered_sample(21, n=800, n_clusters=6, effect=0.4)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    se = bootstrap.cluster_robust_se(1)
    values = bootstrap.estimate[1] + se * np.array([-20.0, -6.0, -2.5, -0.3, 0.0, 1.0, 4.0, 12.0])
    keep = np.array([True, False, True, True])
    gain, far = bootstrap._tangent_starts(1, keep, values)
    assert far.tolist() == [True] + [False] * 6 + [True]
    tangent = bootstrap._path_terms(1, keep)[0]
    distance = values - bootstrap.estimate[1]
    np.testing.assert_array_equal(gain[:, far], tangent[:, None] * distance[far])
    inner = ~far & (distance != 0)
    assert np.all(np.abs(gain[:, inner] - tangent[:, None] * distance[inner]) > 0)
    fits = bootstrap.restricted_fits(1, values)
    for j, value in enumerate(values):
        plain = sm.Logit(y, X[:, [0, 2, 3]], offset=value * X[:, 1]).fit(
            disp=0, method="newton", tol=1e-14, maxiter=100
        )
        np.testing.assert_allclose(fits[[0, 2, 3], j], plain.params, rtol=1e-8, atol=1e-9)
        assert fits[1, j] == value


def test_the_nulls_informations_are_each_nulls_own_product_and_the_saturated_ones_exactly():
    """Test inversion's informations come from the column products (to rounding each null's
    own X' diag(w h) X), except a null with a row whose curvature is below
    SATURATED_CURVATURE: its information is its own product, bit for bit (its rounding
    decides a separated null's statistic)."""
    from buzzpipe.estimate.families import binary_terms
    from buzzpipe.estimate.wild_bootstrap import SATURATED_CURVATURE

    X, y, clusters = clustered_sample(3, n=400, n_clusters=5)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    params = np.repeat(bootstrap.estimate[:, None], 4, axis=1)
    params[3] += np.array([-0.5, 0.0, 30.0, 0.5])  # column 3 is a 0/1 dummy: 30 saturates it
    eta = X @ params
    _, _, curvature = binary_terms(eta, y[:, None], "logit", need_loglike=False)
    assert (curvature[:, 2] < SATURATED_CURVATURE).any()
    assert not (curvature[:, [0, 1, 3]] < SATURATED_CURVATURE).any()
    weighted = bootstrap.weights[:, None] * curvature
    found = bootstrap._null_informations(weighted, curvature)
    for j in range(4):
        own = (X * weighted[:, [j]]).T @ X
        if j == 2:
            np.testing.assert_array_equal(found[j], own)
        else:
            np.testing.assert_allclose(found[j], own, rtol=1e-12, atol=1e-12 * np.abs(own).max())


def test_a_sets_ends_are_judged_flat_or_not_as_at_the_ends_themselves():
    """The flat-tail check reads the statistics the inversion already has (the last accepted
    null, one s.e. beyond a prediction of the end) and evaluates the end itself only where
    that says it may be flat: on real sets no extra call, and the same verdict as the rule
    applied at every end itself (the statistic at the end and one s.e. beyond it)."""
    from buzzpipe.estimate import wild_bootstrap as wb

    X, y, clusters = clustered_sample(51, n=1200, n_clusters=8, effect=0.3)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    calls = []
    original = bootstrap._undetermined_ends
    bootstrap._undetermined_ends = lambda *a: calls.append(a) or original(*a)
    found = bootstrap.confidence_set(1)
    assert not calls and not found.undetermined_ends
    ends = [(found.intervals[0][0], "below"), (found.intervals[0][1], "above")]

    def inversion(values):
        p, t, excess = bootstrap._inversion(1, values, "two-sided")
        return p, t, excess, np.ones(len(values), dtype=bool)

    assert original(inversion, ends, bootstrap.cluster_robust_se(1)) == []
    # the rule: the statistic or its absolute value (a sign at its limit is rounding's)
    assert wb._flat_end(-5.159851563525297, 5.159851563525303)
    assert wb._flat_end(2.0, 2.0 + 1e-7) and not wb._flat_end(2.0, 2.0 + 1e-5)
    assert not wb._flat_end(1.0, -1.5) and not wb._flat_end(math.nan, 1.0)
    assert wb._maybe_flat(2.0, 2.0 + 1e-5) and not wb._maybe_flat(2.0, 2.01)


def test_a_columns_free_products_are_the_whole_designs_without_that_column_bit_for_bit():
    """The column products behind a column's restricted fits are taken from the whole design's
    (its pairs that leave the column out): the products of the design without the column, in
    their order, bit for bit, so the restricted fits' Hessians are the same numbers."""
    from buzzpipe.estimate.batched_newton import _column_products

    X, y, clusters = clustered_sample(8, n=300, n_clusters=6)
    X = np.column_stack([X, np.random.default_rng(8).normal(size=(300, 2))])
    bootstrap = WildScoreBootstrap(X, y, clusters)
    for k in range(X.shape[1]):
        keep = np.arange(X.shape[1]) != k
        found = bootstrap._free_products(k, keep)
        expected = _column_products(X[:, keep])
        assert found[0].flags.f_contiguous  # each product a contiguous column, as kept
        for got, want in zip(found, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_each_draws_crossing_on_the_cubic_through_four_nulls_is_the_cubics_root():
    """Test inversion's prediction on the curve: where every draw's excess is a cubic in the
    null, the crossing found from the bracket's ends and two nulls outside it is the cubic's
    root in the bracket (the linear crossing is not), and the bound the count gives is the
    root of the draw that takes p to alpha."""
    from buzzpipe.estimate.wild_bootstrap import _curved_crossings, _predicted_bound

    rng = np.random.default_rng(5)
    roots = rng.uniform(0.05, 0.95, 40)
    bend = rng.uniform(-0.3, 0.3, (40, 2))  # 1 + b0 u + b1 u^2 > 0.4 on [0, 1]

    def excess(u):  # decreasing through each root: counted (>= 0) below it
        return -(u - roots) * (1.0 + bend[:, 0] * u + bend[:, 1] * u * u)

    places = [-1.0, 2.0]
    a, b = excess(0.0), excess(1.0)
    linear = a / (a - b)
    found = _curved_crossings(linear, a, b, [excess(u) for u in places], places)
    np.testing.assert_allclose(found, roots, atol=1e-10)
    assert np.abs(linear - roots).max() > 1e-2
    # of 80 draws 40 count at the accepted end, none at the rejected one: p <= alpha = 0.25
    # once 20 have stopped counting, at the 20th smallest root
    inside = np.concatenate([a, -np.ones(40)])
    outside = np.concatenate([b, -np.ones(40)])
    others = [np.concatenate([excess(u), -np.ones(40)]) for u in places]
    curved, straight = _predicted_bound(inside, outside, 0.25, others, places)
    assert curved == pytest.approx(np.sort(roots)[19], abs=1e-10)
    assert straight == np.sort(linear)[19]
    assert _predicted_bound(inside, outside, 0.25) == (straight, straight)


@pytest.mark.parametrize("seed", [51, 52, 53])
def test_the_sets_bounds_are_bisections_whatever_the_predictions(seed, monkeypatch):
    """The predictions (lines or cubics through known nulls) only choose which nulls a round
    evaluates ahead: with every prediction withheld (bisection evaluating its own nulls one
    round after another from the midpoints) the set, its bounds and their p-values are the
    same."""
    import buzzpipe.estimate.wild_bootstrap as wild

    X, y, clusters = clustered_sample(seed, n=900, n_clusters=7, effect=0.3)
    found = {
        alternative: WildScoreBootstrap(X, y, clusters).confidence_set(1, alternative=alternative)
        for alternative in ("two-sided", "less")
    }
    monkeypatch.setattr(wild, "_predicted_bound", lambda *_, **__: (math.nan, math.nan))
    for alternative, cubic in found.items():
        alone = WildScoreBootstrap(X, y, clusters).confidence_set(1, alternative=alternative)
        assert alone.intervals == cubic.intervals
        assert alone.bound_p_values == cubic.bound_p_values
        assert alone.notes == cubic.notes


def test_later_batches_start_on_the_cubic_through_the_kept_fits_and_their_slopes():
    """Test inversion keeps each null's restricted fit with the path's slope db/dc there
    (H^{-1} e_k / (H^{-1} e_k)_k at the fit): the slopes equal central differences of
    statsmodels' restricted fits (to 1e-6), a later batch inside the kept nulls starts on the
    cubic Hermite through them, a thousand times closer than the line, and its fits are still
    statsmodels' constrained maxima."""
    X, y, clusters = clustered_sample(21, n=800, n_clusters=6, effect=0.4)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    se = bootstrap.cluster_robust_se(1)
    grid = bootstrap.estimate[1] + se * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    bootstrap.p_values(1, grid)
    values, _, slopes = bootstrap._restricted_starts[1]
    free = [0, 2, 3]

    def plain(value):
        return constrained_logit(X, y, 1, value)

    h = 1e-5 * se
    for j, value in enumerate(values):
        numeric = (plain(value + h) - plain(value - h)) / (2 * h)
        np.testing.assert_allclose(slopes[:, j], numeric, rtol=0, atol=1e-6)
    inside = grid[1] + 0.37 * (grid[2] - grid[1])
    from buzzpipe.estimate.wild_bootstrap import _interpolated_starts

    kept = bootstrap._restricted_starts[1]
    cubic = _interpolated_starts(kept, np.array([inside]), bootstrap.estimate[free])[:, 0]
    line = _interpolated_starts(kept[:2], np.array([inside]), bootstrap.estimate[free])[:, 0]
    exact = plain(inside)
    assert np.abs(cubic - exact).max() < 1e-3 * np.abs(line - exact).max()
    fits = bootstrap.restricted_fits(1, np.array([inside]))
    np.testing.assert_allclose(fits[free, 0], exact, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_unit_weights_skipped_give_the_bits_of_weights_multiplied(family, monkeypatch):
    """Without sampling weights the restricted fits and partialled scores skip multiplying by
    the weights (all 1): the confidence set, every restricted estimate and cluster score are the
    same bits as with the multiplication made (the weights given as an n x m matrix of ones,
    and the bootstrap told its weights are not all 1)."""
    import buzzpipe.estimate.batched_newton as batched

    X, y, clusters = clustered_sample(23, n=400, effect=0.4, family=family)
    values = np.linspace(-0.5, 1.2, 9)
    skipped = WildScoreBootstrap(X, y, clusters, family=family, weight_type="webb")
    made = WildScoreBootstrap(X, y, clusters, family=family, weight_type="webb")
    made._unit_weights = False
    original = batched.newton_batch

    def multiplying(design, outcome, weights, **options):
        columns = options["offset"].shape[1] if np.ndim(options.get("offset")) == 2 else 1
        return original(design, outcome, np.ones((len(outcome), columns)), **options)

    expected_set = None
    for bootstrap, patched in ((skipped, False), (made, True)):
        with monkeypatch.context() as patch:
            if patched:
                patch.setattr("buzzpipe.estimate.wild_bootstrap.newton_batch", multiplying)
            params = bootstrap.restricted_fits(1, values)
            scores, separated = bootstrap.partialled_scores_at(1, params)
            found = bootstrap.confidence_set(2)
        if expected_set is None:
            expected = params, scores, separated
            expected_set = found
            continue
        np.testing.assert_array_equal(params, expected[0])
        np.testing.assert_array_equal(scores, expected[1])
        np.testing.assert_array_equal(separated, expected[2])
        assert found.intervals == expected_set.intervals
        assert found.bound_p_values == expected_set.bound_p_values


def _excess(statistic, distribution: np.ndarray, tie_rule: str, alternative: str) -> np.ndarray:
    """The numpy reference for each draw's excess over the actual statistic, as
    ``bootstrap_p_value`` compares them (|t| two-sided, signed one-sided), so that a draw
    counts towards p exactly where its excess is >= 0; a draw tying the actual statistic
    (within the tie slack) is +inf under the inclusive rule and -inf under the strict one, a
    failed draw -inf; NaN everywhere when there is no statistic. The construction the study
    used before ``wild_kernels.draw_excesses``, which must give its numbers bit for bit."""
    from buzzpipe.estimate.wild_bootstrap import TIE_TOLERANCE, _oriented

    if not math.isfinite(statistic):
        return np.full(np.shape(distribution), np.nan)
    draws, actual = _oriented(statistic, distribution, alternative)
    with np.errstate(invalid="ignore"):
        excess = draws - actual
        tied = np.abs(excess) <= TIE_TOLERANCE * np.abs(actual)
    excess[tied] = -np.inf if tie_rule == "strict" else np.inf
    return excess


@pytest.mark.parametrize("tie_rule", ["inclusive", "strict"])
def test_a_halved_two_sided_excess_row_is_the_whole_rows_bits(tie_rule):
    """With every weight vector enumerated, test inversion's excess rows are made from the half
    of the draws whose first weight is positive: two-sided, the negated half's excesses are the
    same numbers (|-t| = |t|) and are copied, not made again. Each row, at the estimate (t is
    rounding noise, zeroed) and elsewhere, equals the excesses of the half and its negation
    bit for bit."""
    X, y, clusters = clustered_sample(29, n=300, effect=0.5)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb", tie_rule=tie_rule)
    assert wild.enumerated
    values = np.concatenate([[wild.estimate[1]], wild.estimate[1] + np.linspace(-1, 1, 6)])
    for alternative in ("two-sided", "greater", "less"):
        _, statistics, excess = wild._inversion(1, values, alternative)
        for j in range(len(values)):
            half = wild.statistics(excess.scores[:, [j]], wild._sign_half())[0]
            whole = np.concatenate([half, -half])
            expected = _excess(statistics[j], whole, tie_rule, alternative)
            np.testing.assert_array_equal(excess[j], expected)


@pytest.mark.parametrize("tie_rule", ["inclusive", "strict"])
def test_the_compiled_excess_rows_are_excess_bits(tie_rule):
    """``wild_kernels.draw_excesses`` gives the numpy reference's numbers bit for bit: drawn (not
    enumerated) weights, every alternative, a null at the estimate (t zeroed), failed (NaN)
    draws, draws tying the actual statistic and draws below the zero threshold."""
    from buzzpipe.estimate.wild_bootstrap import TIE_TOLERANCE, ZERO_STATISTIC, _orientation
    from buzzpipe.estimate.wild_kernels import draw_excesses

    X, y, clusters = clustered_sample(30, n=400, n_clusters=14, effect=0.3)
    wild = WildScoreBootstrap(X, y, clusters, draws=499, seed=3)
    assert not wild.enumerated
    values = np.concatenate([[wild.estimate[1]], wild.estimate[1] + np.linspace(-1, 1, 5)])
    rng = np.random.default_rng(4)
    for alternative in ("two-sided", "greater", "less"):
        _, statistics, excess = wild._inversion(1, values, alternative)
        for j in range(len(values)):
            draws = wild.statistics(excess.scores[:, [j]], wild.draws)[0]
            np.testing.assert_array_equal(
                excess[j], _excess(statistics[j], draws, tie_rule, alternative)
            )
        for actual in (statistics[1], -statistics[1], 3e-9, -0.0):
            draws = rng.normal(size=300)
            draws[:40] = np.nan
            draws[40:60] = actual * (1.0 + rng.uniform(-2e-10, 2e-10, 20))
            draws[60:70] = -actual
            draws[70:80] = rng.uniform(-1e-8, 1e-8, 10)
            draws[80:85] = [0.0, -0.0, np.inf, -np.inf, 5e-9]
            found = draw_excesses(
                draws, actual, _orientation(alternative), tie_rule == "strict",
                ZERO_STATISTIC, TIE_TOLERANCE, np.empty(300),
            )  # fmt: skip
            expected = _excess(actual, draws, tie_rule, alternative)
            np.testing.assert_array_equal(found, expected)
            assert np.array_equal(np.signbit(found), np.signbit(expected))


def _exhaustive_fits(monkeypatch):
    """Test inversion's restricted fits iterated to the last bits, as before the stop rules
    (``INVERSION_DECREMENT``, ``INVERSION_STEP``) read what the p-values need."""
    import buzzpipe.estimate.wild_bootstrap as wild

    monkeypatch.setattr(wild, "INVERSION_DECREMENT", 1e-8)
    monkeypatch.setattr(wild, "INVERSION_STEP", 1e-10)


def assert_same_set_within_tolerance(found, exhaustive, scale, rtol=1e-7):
    """The same pieces, notes and undetermined ends; each finite bound within rtol scales."""
    assert len(found.intervals) == len(exhaustive.intervals)
    assert found.notes == exhaustive.notes
    assert [way for _, way in found.undetermined_ends] == [
        way for _, way in exhaustive.undetermined_ends
    ]
    for piece, expected in zip(found.intervals, exhaustive.intervals, strict=True):
        for bound, reference in zip(piece, expected, strict=True):
            if math.isinf(reference):
                assert bound == reference
            else:
                assert abs(bound - reference) <= rtol * scale


def assert_same_sets_and_bound_p_values(found: dict, expected: dict, scale) -> None:
    """Each set of ``found`` (by alternative) the same as ``expected``'s within rtol 1e-7
    scales (``assert_same_set_within_tolerance``), with the same p-values inside and outside
    each bound."""
    for alternative, fast in found.items():
        assert_same_set_within_tolerance(fast, expected[alternative], scale)
        assert [row[1:] for row in fast.bound_p_values] == [
            row[1:] for row in expected[alternative].bound_p_values
        ]


@pytest.mark.parametrize("seed", [41, 42, 43, 44])
def test_the_stop_rules_of_inversions_fits_move_no_bound_beyond_the_tolerance(seed, monkeypatch):
    """Test inversion's restricted fits stop where the p-values (counts of draws) no longer
    depend on them (``INVERSION_DECREMENT``): every set (two-sided, one-sided, on several
    samples) is the one the fits iterated to the last bits give, each bound within the
    inversion's tolerance (1e-7 of the set's standard error)."""
    X, y, clusters = clustered_sample(seed, n=700, n_clusters=6, effect=0.25)
    found = {}
    for alternative in ("two-sided", "greater", "less"):
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        found[alternative] = wild.confidence_set(1, alternative=alternative)
    statistics = grid_statistics(X, y, clusters)
    _exhaustive_fits(monkeypatch)
    for alternative, fast in found.items():
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        exhaustive = wild.confidence_set(1, alternative=alternative)
        assert_same_set_within_tolerance(fast, exhaustive, wild.cluster_robust_se(1))
    # the statistics themselves (a bound moves by about their change, in standard errors):
    # 3e-10 at most measured; a rule of 1e-4 instead of 1e-7 moved them by 2e-7
    np.testing.assert_allclose(statistics, grid_statistics(X, y, clusters), rtol=0, atol=1e-8)


def grid_statistics(X, y, clusters):
    """The statistics at a set's grid (its first batch of restricted fits, on the tangent
    within 6 standard errors, from the estimate beyond)."""
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    offsets = np.concatenate([np.linspace(-6, 6, 41), [-40, -20, -12, 12, 20, 40]])
    values = wild.estimate[1] + wild.cluster_robust_se(1) * offsets
    return wild._inversion(1, values, "two-sided")[1]


def test_an_unbounded_set_stays_unbounded_under_the_stop_rules(monkeypatch):
    """Five clusters and Rademacher weights cannot reject at 5%: the set is every value, with
    or without the stop rules; a set accepted out to the grid's far end stays unbounded."""
    X, y, clusters = clustered_sample(7, n=500, n_clusters=7, effect=0.0)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    fast = wild.confidence_set(2, alpha=0.01, alternative="greater")
    _exhaustive_fits(monkeypatch)
    exhaustive = WildScoreBootstrap(X, y, clusters, weight_type="webb").confidence_set(
        2, alpha=0.01, alternative="greater"
    )
    assert not exhaustive.bounded
    assert_same_set_within_tolerance(fast, exhaustive, wild.cluster_robust_se(2))


def _plain_inversion(wild):
    """Every null of test inversion fitted by the batched solve, none taken settled at its
    start (``_fitted_scores``' reference path)."""
    wild._settles_starts = False
    return wild


@pytest.mark.parametrize("seed", [51, 52, 53])
def test_settled_starts_give_the_sets_of_every_null_fitted(seed):
    """Bisection's nulls whose start already has a restricted decrement below
    SETTLED_DECREMENT are taken as their estimates (``_fitted_scores``): every set (two-sided
    and one-sided, on several samples) has the same pieces, notes and ends as with every null
    fitted, each bound within the inversion's tolerance (1e-7 of the set's standard error),
    and many of bisection's nulls settled."""
    import buzzpipe.estimate.wild_bootstrap as wild_module

    X, y, clusters = clustered_sample(seed, n=700, n_clusters=6, effect=0.25)
    fitted_counts = []
    original = wild_module.WildScoreBootstrap._fitted_from

    def counting(self, k, keep, values, start):
        fitted_counts.append(values.size)
        return original(self, k, keep, values, start)

    for alternative in ("two-sided", "greater", "less"):
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        settled_asked = []
        fitted_from = wild._fitted_scores

        def asked(k, values, slopes, fitted_from=fitted_from, settled_asked=settled_asked):
            settled_asked.append(values.size)
            return fitted_from(k, values, slopes)

        wild._fitted_scores = asked
        fitted_counts.clear()
        wild_module.WildScoreBootstrap._fitted_from = counting
        try:
            found = wild.confidence_set(1, alternative=alternative)
        finally:
            wild_module.WildScoreBootstrap._fitted_from = original
        plain = _plain_inversion(WildScoreBootstrap(X, y, clusters, weight_type="webb"))
        expected = plain.confidence_set(1, alternative=alternative)
        assert_same_set_within_tolerance(found, expected, wild.cluster_robust_se(1))
        same_p = [row[1:] for row in expected.bound_p_values]  # p inside and outside
        assert [row[1:] for row in found.bound_p_values] == same_p
        grid, later = settled_asked[0], sum(settled_asked[1:])
        assert later > 0 and fitted_counts[0] == grid  # the grid is always fitted
        assert sum(fitted_counts[1:]) < 0.8 * later  # many of bisection's nulls settled


def test_settled_starts_are_the_restricted_maxima_and_their_scores():
    """A later batch's nulls taken at their starts are statsmodels' constrained maxima (to
    1e-8: the decrement's bound puts them within about 1e-9 of it in the information's norm),
    and their partialled cluster scores and statistics are those of the nulls fitted (to
    1e-8 relative); with SETTLED_DECREMENT = 0 nothing settles, each null takes the one
    Newton step the batched solve would (its decrement below INVERSION_DECREMENT), and its
    numbers are the fitted path's to rounding."""
    import buzzpipe.estimate.wild_bootstrap as wild_module

    X, y, clusters = clustered_sample(21, n=800, n_clusters=6, effect=0.4)

    def later_batch(settle):
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        se = wild.cluster_robust_se(1)
        wild.p_values(1, wild.estimate[1] + se * np.linspace(-3.0, 3.0, 13))  # the "grid"
        values = wild.estimate[1] + se * np.array([-1.9, -0.77, 0.31, 1.42, 2.63])
        slopes = np.full((4, values.size), np.nan)
        if not settle:
            wild._settles_starts = False
        sums, separated = wild._fitted_scores(1, values, slopes)
        statistics = wild._tests(sums, np.flatnonzero(~separated), "two-sided")[1]
        kept_values, kept_fits = wild._restricted_starts[1][:2]
        return values, sums, statistics, kept_values[: values.size], kept_fits[:, : values.size]

    values, sums, statistics, kept_values, kept_fits = later_batch(settle=True)
    np.testing.assert_array_equal(kept_values, values)
    for j, value in enumerate(values):
        np.testing.assert_allclose(
            kept_fits[:, j], constrained_logit(X, y, 1, value), rtol=0, atol=1e-8
        )
    _, fitted_sums, fitted_statistics, _, _ = later_batch(settle=False)
    np.testing.assert_allclose(sums, fitted_sums, rtol=1e-8, atol=1e-8 * np.abs(sums).max())
    np.testing.assert_allclose(statistics, fitted_statistics, rtol=1e-8)

    original = wild_module.SETTLED_DECREMENT
    try:
        wild_module.SETTLED_DECREMENT = 0.0
        _, none_settled, none_statistics, _, _ = later_batch(settle=True)
    finally:
        wild_module.SETTLED_DECREMENT = original
    # the one Newton step the batched solve takes from each start, rounding apart
    scale = np.abs(fitted_sums).max()
    np.testing.assert_allclose(none_settled, fitted_sums, rtol=1e-12, atol=1e-13 * scale)
    np.testing.assert_allclose(none_statistics, fitted_statistics, rtol=1e-12)


def test_a_start_far_from_its_maximum_is_fitted_not_settled():
    """A start whose restricted decrement is above SETTLED_DECREMENT (here a kept fit moved
    off its path) is fitted by the batched solve: its estimate is the constrained maximum,
    and the decrement at the start says how far off it was."""
    X, y, clusters = clustered_sample(22, n=600, n_clusters=6, effect=0.3)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    se = wild.cluster_robust_se(1)
    grid = wild.estimate[1] + se * np.linspace(-2.0, 2.0, 9)
    wild.p_values(1, grid)
    values, fits, slopes = wild._restricted_starts[1]
    wild._restricted_starts[1] = (values, fits + 0.05, slopes)  # every start off its path
    params = np.repeat(wild.estimate[:, None], 2, axis=1)
    inside = grid[[3, 6]] + 0.4 * se
    params[1] = inside
    params[[0, 2, 3]] = column_one_starts(wild, inside)
    decrements = np.full(2, np.nan)
    wild.partialled_scores_at(1, params, decrements=decrements)
    assert (decrements > 1e-6).all()
    wild._fitted_scores(1, inside, np.full((4, 2), np.nan))
    fitted = wild._restricted_starts[1][1][:, :2]
    for j, value in enumerate(inside):
        np.testing.assert_allclose(
            fitted[:, j], constrained_logit(X, y, 1, value), rtol=0, atol=1e-7
        )


def constrained_logit(X, y, column, value):
    """statsmodels' logit of the other columns with ``column``'s coefficient fixed at ``value``
    (through the offset), iterated to 1e-14."""
    free = [j for j in range(X.shape[1]) if j != column]
    fitted = sm.Logit(y, X[:, free], offset=value * X[:, column])
    return fitted.fit(disp=0, method="newton", tol=1e-14, maxiter=100).params


def column_one_starts(wild, values):
    """The starts test inversion gives a later batch of column 1's nulls."""
    from buzzpipe.estimate.wild_bootstrap import _interpolated_starts

    return _interpolated_starts(wild._restricted_starts[1], values, wild.estimate[[0, 2, 3]])


def test_an_unbounded_set_with_settled_starts_is_the_fitted_ones():
    """The hard cases: a one-sided set accepted out to the grid's far end (unbounded) and a
    set whose far nulls are separated are the same with settled starts as with every null
    fitted."""
    X, y, clusters = clustered_sample(7, n=500, n_clusters=7, effect=0.0)
    found = WildScoreBootstrap(X, y, clusters, weight_type="webb").confidence_set(
        2, alpha=0.01, alternative="greater"
    )
    plain = _plain_inversion(WildScoreBootstrap(X, y, clusters, weight_type="webb"))
    expected = plain.confidence_set(2, alpha=0.01, alternative="greater")
    assert not found.bounded
    assert_same_set_within_tolerance(found, expected, plain.cluster_robust_se(2))
    X, y, clusters = clustered_sample(3, n=400, n_clusters=5)
    found = WildScoreBootstrap(X, y, clusters).confidence_set(3)
    plain = _plain_inversion(WildScoreBootstrap(X, y, clusters))
    assert_same_set_within_tolerance(found, plain.confidence_set(3), plain.cluster_robust_se(3))


# The grid's inner nulls start on the Taylor polynomial of the restricted estimates' path at the
# estimate (``_path_terms``: the logit to the fourth power, other families the tangent).


def _tangent_only(monkeypatch):
    """Test inversion's grid started on the tangent alone (the path's first Taylor term)."""
    original = WildScoreBootstrap._path_terms

    def first_term(self, k, keep):
        terms = original(self, k, keep)
        return None if terms is None else terms[:1]

    monkeypatch.setattr(WildScoreBootstrap, "_path_terms", first_term)


def test_the_paths_taylor_polynomial_is_off_by_the_fifth_power_of_the_distance():
    """A start on the path's polynomial to the fourth power is within about C d^5 of the
    constrained maximum (statsmodels' fit with b_k in the offset): halving the distance d from
    the estimate divides its error by 20 to 45 (32 for the fifth power); on the tangent alone
    by about 4 (the square), and its error is far larger."""
    X, y, clusters = clustered_sample(21, n=800, n_clusters=6, effect=0.4)
    wild = WildScoreBootstrap(X, y, clusters)
    keep = np.array([True, False, True, True])
    se = wild.cluster_robust_se(1)
    terms = wild._path_terms(1, keep)
    assert len(terms) == 4
    errors, tangent_errors = [], []
    for distance in (2.0 * se, se):
        maximum = constrained_logit(X, y, 1, wild.estimate[1] + distance)
        start = wild.estimate[keep] + sum(t * distance**j for j, t in enumerate(terms, 1))
        errors.append(np.abs(start - maximum).max())
        tangent_errors.append(np.abs(wild.estimate[keep] + terms[0] * distance - maximum).max())
    assert 20 < errors[0] / errors[1] < 45
    assert 3 < tangent_errors[0] / tangent_errors[1] < 5
    assert errors[1] < 1e-3 * tangent_errors[1]


@pytest.mark.parametrize("seed", [61, 62, 63])
def test_grid_starts_on_the_paths_polynomial_give_the_sets_of_the_tangents(seed, monkeypatch):
    """Every set (two-sided and one-sided, on several samples, one small with a strong effect)
    has the same pieces, notes, ends and p-values at its bounds as with the grid started on
    the tangent alone, each bound within the inversion's tolerance (1e-7 of the set's standard
    error); the grid's statistics are within 1e-9 of those of fits iterated to a decrement of
    1e-24 (the stop rule INVERSION_DECREMENT's own error: measured up to 7e-10 here, and up
    to 1.1e-9 from the tangent on the small sample), with the same p-values."""
    import buzzpipe.estimate.wild_bootstrap as wild_module

    n, effect = (250, 1.2) if seed == 63 else (700, 0.25)
    X, y, clusters = clustered_sample(seed, n=n, n_clusters=6, effect=effect)
    se = WildScoreBootstrap(X, y, clusters, weight_type="webb").cluster_robust_se(1)
    offsets = np.concatenate([np.linspace(-6, 6, 41), [-40, -20, -12, 12, 20, 40]])

    def grid_tests():
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        return wild._inversion(1, np.sort(wild.estimate[1] + se * offsets), "two-sided")[:2]

    def sets():
        return {
            alternative: WildScoreBootstrap(X, y, clusters, weight_type="webb").confidence_set(
                1, alternative=alternative
            )
            for alternative in ("two-sided", "greater", "less")
        }

    found, grid = sets(), grid_tests()
    with monkeypatch.context() as patched:
        patched.setattr(wild_module, "INVERSION_DECREMENT", 1e-24)
        exact = grid_tests()
    _tangent_only(monkeypatch)
    expected = sets()
    assert_same_sets_and_bound_p_values(found, expected, se)
    np.testing.assert_array_equal(grid[0], exact[0])
    np.testing.assert_allclose(grid[1], exact[1], rtol=0, atol=1e-9)


def test_the_logit_terms_into_kept_arrays_are_binary_terms_bits():
    """``binary_terms(out=)`` (the logit's d and h into a caller's arrays) gives the numbers of
    the plain call bit for bit, far tails and signed zeros included."""
    from buzzpipe.estimate.families import binary_terms

    rng = np.random.default_rng(5)
    eta = rng.normal(scale=4.0, size=(300, 7))
    eta[0] = [-800.0, -40.0, -0.0, 0.0, 1e-300, 40.0, 800.0]
    y = (rng.random((300, 1)) < 0.4).astype(float)
    _, derivative, curvature = binary_terms(eta, y, "logit", need_loglike=False)
    out = tuple(np.full(eta.shape, np.nan) for _ in range(3))
    loglike, into_derivative, into_curvature = binary_terms(
        eta, y, "logit", need_loglike=False, out=out
    )
    assert loglike is None and into_derivative is out[0] and into_curvature is out[1]
    np.testing.assert_array_equal(into_derivative, derivative)
    np.testing.assert_array_equal(into_curvature, curvature)


def test_partialled_scores_into_kept_arrays_are_the_fresh_arrays_bits(monkeypatch):
    """Test inversion's n x m temporaries kept on the bootstrap and reused (``_scratch``) give
    the partialled cluster scores, slopes, decrements and steps of fresh arrays bit for bit,
    over batches of different widths one after the other (a wider one, then a narrower)."""
    import buzzpipe.estimate.wild_bootstrap as wild_module

    X, y, clusters = clustered_sample(23, n=500, n_clusters=6, effect=0.3)
    found = {}
    for kept in (True, False):
        if not kept:
            monkeypatch.setattr(wild_module, "SCRATCH_KEPT", 0)
        wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
        se = wild.cluster_robust_se(1)
        runs = []
        for width in (9, 4, 7):
            params = np.repeat(wild.estimate[:, None], width, axis=1)
            params[1] += se * np.linspace(-2.0, 2.0, width)
            slopes, decrements, steps = np.zeros((4, width)), np.zeros(width), np.zeros((4, width))
            sums, separated = wild.partialled_scores_at(1, params, slopes, decrements, steps)
            runs.append((sums, separated, slopes, decrements, steps))
        assert bool(wild.__dict__.get("_scratch_kept")) == kept
        found[kept] = runs
    for mine, theirs in zip(found[True], found[False], strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("seed", "family"), [(61, "logit"), (62, "probit"), (63, "logit")])
def test_a_start_at_the_fits_estimate_gives_the_estimate_and_tests_from_zero(seed, family):
    """The unrestricted fit started at a fit's own estimate (``start``, as the study's
    bootstrap is) stops at the estimate found from zero to 1e-10, and so does a test's
    statistic; a start that is no start (NaN, the wrong length) or one so far off that Newton
    does not converge from it is replaced by zero."""
    X, y, clusters = clustered_sample(seed, n=700, n_clusters=6, effect=0.2, family=family)
    model = (sm.Logit if family == "logit" else sm.Probit)(y, X)
    estimate = model.fit(disp=0, method="newton", tol=1e-14).params
    plain = WildScoreBootstrap(X, y, clusters, family=family)
    started = WildScoreBootstrap(X, y, clusters, family=family, start=estimate)
    np.testing.assert_allclose(started.estimate, plain.estimate, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(started.estimate, estimate, rtol=1e-10, atol=1e-12)
    assert started.test(1).statistic == pytest.approx(plain.test(1).statistic, rel=1e-10)
    for no_start in ([np.nan] * X.shape[1], estimate[:-1], np.full(X.shape[1], 1e3)):
        refitted = WildScoreBootstrap(X, y, clusters, family=family, start=no_start)
        np.testing.assert_allclose(refitted.estimate, plain.estimate, rtol=1e-10, atol=1e-12)


def _far_at_the_estimate(monkeypatch):
    """The grid's far nulls (beyond TANGENT_REACH) started at the estimate, as before the
    tangent: the plain path's starts."""
    original = WildScoreBootstrap._tangent_starts

    def at_estimate(self, k, keep, values):
        gain, far = original(self, k, keep, values)
        gain[:, far] = 0.0
        return gain, far

    monkeypatch.setattr(WildScoreBootstrap, "_tangent_starts", at_estimate)


@pytest.mark.parametrize("seed", [71, 72, 73])
def test_far_grid_nulls_on_the_tangent_give_the_sets_started_at_the_estimate(seed, monkeypatch):
    """The grid's far nulls (+-12, 20, 40 s.e.) started on the path's tangent: every set
    (two-sided and one-sided, on several samples, one small with a strong effect) has the same
    pieces, notes, ends and p-values at its bounds as with them started at the estimate, each
    bound within the inversion's tolerance (1e-7 of the set's standard error); the far nulls'
    restricted estimates are within 1e-9 of fits iterated to a decrement of 1e-24 and their
    statistics within 1e-9 (the stop rule's own error), with the same p-values."""
    import buzzpipe.estimate.wild_bootstrap as wild_module

    n, effect = (250, 1.2) if seed == 73 else (700, 0.25)
    X, y, clusters = clustered_sample(seed, n=n, n_clusters=6, effect=effect)
    se = WildScoreBootstrap(X, y, clusters, weight_type="webb").cluster_robust_se(1)
    offsets = np.array([-40.0, -20.0, -12.0, 0.0, 12.0, 20.0, 40.0])

    def far_fits():  # each a column's first batch: the grid's starts
        wild, other = (WildScoreBootstrap(X, y, clusters, weight_type="webb") for _ in range(2))
        values = wild.estimate[1] + se * offsets
        return wild.restricted_fits(1, values), other._inversion(1, values, "greater")[:2]

    def sets():
        return {
            alternative: WildScoreBootstrap(X, y, clusters, weight_type="webb").confidence_set(
                1, alternative=alternative
            )
            for alternative in ("two-sided", "greater", "less")
        }

    found, (fits, tests) = sets(), far_fits()
    with monkeypatch.context() as patched:
        patched.setattr(wild_module, "INVERSION_DECREMENT", 1e-24)
        exact_fits, exact_tests = far_fits()
    np.testing.assert_allclose(fits, exact_fits, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(tests[0], exact_tests[0])
    np.testing.assert_allclose(tests[1], exact_tests[1], rtol=0, atol=1e-9)
    _far_at_the_estimate(monkeypatch)
    expected = sets()
    assert_same_sets_and_bound_p_values(found, expected, se)


def test_a_grid_whose_far_null_is_not_fitted_from_the_tangent_is_the_plain_grid(monkeypatch):
    """Where a far null of the grid is separated or stops short from its tangent start, the
    whole batch is fitted again with the far nulls at the estimate: the restricted estimates
    are then those of the plain path bit for bit (a set's far piece can be decided by their
    rounding: tests/study/test_study_sensitivity.py's supermodularity case)."""
    X, y, clusters = clustered_sample(74, n=400, n_clusters=6, effect=0.5)
    wild = WildScoreBootstrap(X, y, clusters, weight_type="webb")
    values = wild.estimate[1] + wild.cluster_robust_se(1) * np.linspace(-40.0, 40.0, 9)
    original = WildScoreBootstrap._fitted_from
    calls = []

    def first_far_unusable(self, k, keep, nulls, start):
        params, usable = original(self, k, keep, nulls, start)
        calls.append(start.copy())
        if len(calls) == 1:
            usable = usable.copy()
            usable[0] = False  # -40 s.e.: as if separated from the tangent
        return params, usable

    with monkeypatch.context() as patched:
        patched.setattr(WildScoreBootstrap, "_fitted_from", first_far_unusable)
        found = wild.restricted_fits(1, values)
    assert len(calls) == 2 and not np.array_equal(calls[0], calls[1])
    _far_at_the_estimate(monkeypatch)
    plain = WildScoreBootstrap(X, y, clusters, weight_type="webb").restricted_fits(1, values)
    np.testing.assert_array_equal(found, plain)


def test_informations_from_the_products_not_all_zero_are_all_the_products():
    """The informations of test inversion's nulls come from one product with the column
    products that are not all zero (two levels of one factor never meet), the others' entries
    zeros: the numbers of ``_hessians`` with every product to rounding (OpenBLAS may sum a
    product of another width in another order), and a column's free products are still its
    design's own, bit for bit."""
    from buzzpipe.estimate.batched_newton import _column_products, _hessians

    X, y, clusters = clustered_sample(75, n=500, n_clusters=6, effect=0.3)
    level = np.random.default_rng(75).integers(0, 3, 500)
    X = np.column_stack([X, level == 1, level == 2]).astype(float)  # one factor's two levels
    wild = WildScoreBootstrap(X, y, clusters)
    kept, where = wild._whole_products()
    p = X.shape[1]
    assert kept.shape[1] == p * (p + 1) // 2 and not kept[:, -1].any()  # one pair never meets
    every = _column_products(X)
    weights = np.random.default_rng(76).random((500, 9))
    for m in (1, 2, 3, 5, 9):
        expected = _hessians(*every, weights[:, :m], p)
        found = wild._informations(weights[:, :m])
        np.testing.assert_allclose(found, expected, rtol=1e-14, atol=0)
        assert (found[expected == 0.0] == 0.0).all()
    for k in range(p):
        keep = np.arange(p) != k
        free, own = wild._free_products(k, keep), _column_products(X[:, keep])
        for got, want in zip(free, own, strict=True):
            np.testing.assert_array_equal(got, want)
