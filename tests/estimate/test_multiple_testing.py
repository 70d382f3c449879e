"""Holm and the Romano-Wolf step-down: against independent implementations on fixed draws."""

import math

import numpy as np
import pytest
from bands import Claim, at_most, states
from statsmodels.stats.multitest import multipletests
from test_wild_bootstrap import WEBB, clustered_sample, plain_score_bootstrap

from buzzpipe.errors import InputError
from buzzpipe.estimate.multiple_testing import family_test, holm, romano_wolf
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap


def literal_step_down(statistics, draws, alternatives):
    """Romano-Wolf (2016, algorithm 4.1) step by step, one Python loop per draw."""

    def sign(value, alternative):
        if math.isnan(value):
            return -math.inf
        return {"greater": value, "less": -value, "two-sided": abs(value)}[alternative]

    m, B = len(statistics), len(draws[0])
    s = [sign(statistics[h], alternatives[h]) for h in range(m)]
    s_star = [[sign(draws[h][b], alternatives[h]) for b in range(B)] for h in range(m)]
    ranked = sorted(range(m), key=lambda h: (-s[h], h))
    adjusted, running = [0.0] * m, 0.0
    for j, h in enumerate(ranked):
        rest = ranked[j:]
        hits = 0
        for b in range(B):
            if max(s_star[k][b] for k in rest) >= s[h] - 1e-10 * abs(s[h]):
                hits += 1
        running = max(running, hits / B)
        adjusted[h] = running
    raw = [sum(x >= s[h] - 1e-10 * abs(s[h]) for x in s_star[h]) / B for h in range(m)]
    return raw, adjusted


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, size=m)
        p[0] = p[-1]  # a tie
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(holm(p), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_romano_wolf_matches_literal_step_down_on_fixed_draws(seed):
    rng = np.random.default_rng(seed)
    m, B = 5, 400
    common = rng.standard_normal(B)
    draws = 0.7 * common + 0.7 * rng.standard_normal((m, B))
    draws = np.round(draws, 1)  # ties between draws and with the statistics
    statistics = np.round(np.array([2.4, -1.9, 0.3, 1.7, -2.6]) * rng.uniform(0.8, 1.2, m), 1)
    draws[2, :3] = np.nan  # failed draws never count
    alternatives = ["two-sided", "less", "greater", "greater", "two-sided"]
    result = romano_wolf(statistics, draws, alternatives)
    raw, adjusted = literal_step_down(statistics, draws, alternatives)
    np.testing.assert_array_equal(result["raw"], raw)
    np.testing.assert_array_equal(result["adjusted"], adjusted)
    assert np.all(result["adjusted"] >= result["raw"])


def test_one_hypothesis_is_its_own_bootstrap_p_value():
    X, y, clusters = clustered_sample(4, effect=0.1)
    bootstrap = WildScoreBootstrap(X, y, clusters)
    single = bootstrap.test(1, 0.0)
    family = family_test([(bootstrap, 1, 0.0, "two-sided")])
    assert family.raw[0] == single.p_value == family.romano_wolf[0] == family.holm[0]


def test_family_of_wild_score_tests_matches_statsmodels_loop():
    """Three hypotheses on two models with the same five clusters, every Webb draw enumerated;
    the reference computes each hypothesis's draws with a statsmodels restricted fit and a loop
    over itertools.product (the same order), then steps down literally."""
    X, y, clusters = clustered_sample(7, effect=0.2)
    other_y = clustered_sample(8, effect=0.0)[1]  # a second outcome on the same firms
    first = WildScoreBootstrap(X, y, clusters)
    second = WildScoreBootstrap(X, other_y, clusters)
    hypotheses = [
        (first, 1, 0.0, "greater"),
        (first, 2, 0.0, "two-sided"),
        (second, 1, 0.0, "less"),
    ]
    family = family_test(hypotheses, labels=["a", "b", "c"])
    statistics, draws = [], []
    for outcome, k in ((y, 1), (y, 2), (other_y, 1)):
        actual, distribution, _ = plain_score_bootstrap(X, outcome, clusters, k, 0.0, WEBB)
        statistics.append(actual)
        draws.append(distribution)
    raw, adjusted = literal_step_down(statistics, draws, [h[3] for h in hypotheses])
    np.testing.assert_allclose(family.statistics, statistics, rtol=1e-8)
    np.testing.assert_allclose(family.raw, raw, atol=1e-12)
    np.testing.assert_allclose(family.romano_wolf, adjusted, atol=1e-12)
    np.testing.assert_allclose(family.holm, multipletests(raw, method="holm")[1], atol=1e-12)
    records = family.as_records()
    assert [r["hypothesis"] for r in records] == ["a", "b", "c"]
    assert [r["alternative"] for r in records] == ["greater", "two-sided", "less"]


def test_family_refuses_different_weight_vectors():
    X, y, clusters = clustered_sample(9)
    webb = WildScoreBootstrap(X, y, clusters)
    rademacher = WildScoreBootstrap(X, y, clusters, weight_type="rademacher")
    with pytest.raises(InputError):
        family_test([(webb, 1, 0.0, "two-sided"), (rademacher, 2, 0.0, "two-sided")])
    with pytest.raises(InputError):
        romano_wolf([1.0], np.zeros((1, 3)), ["bigger"])


def fwer_sample(rng, effects, design):
    """The study's design (docs/few_clusters.md): five regions of 874/285/190/181/74 firms,
    region and industry fixed effects; four correlated regressors with a region and a cell
    component, a region shock and a cell shock in the outcome."""
    n = design.firms
    common = rng.standard_normal((n, 1))
    regressors = 0.6 * common + 0.6 * rng.standard_normal((n, 4))
    regressors += 0.5 * rng.standard_normal((design.n_regions, 4))[design.region]
    regressors += 0.5 * rng.standard_normal((design.n_cells, 4))[design.cell]
    index = -0.1 + regressors @ np.asarray(effects)
    index += 0.5 * rng.standard_normal(design.n_regions)[design.region]
    index += 0.3 * rng.standard_normal(design.n_cells)[design.cell]
    y = (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)
    return np.column_stack([regressors, design.cell_design[design.cell]]), y


FWER = Claim(
    "family-wise errors at 5% over 2,000 samples",
    at_most(2000, 0.05),
    0.05,
    (("a family-wise error rate of 7.5%", 0.075),),
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("effects", "true_nulls"),
    [((0.0, 0.0, 0.0, 0.0), [0, 1, 2, 3]), ((0.23, 0.0, 0.0, 0.0), [1, 2, 3])],
    ids=["complete null", "partial null"],
)
@states(FWER)
def test_family_wise_error_rate_over_2000_seeds(effects, true_nulls):
    """FWER of Holm and Romano-Wolf with the headline rule's bootstrap (wild score bootstrap by
    region, all 7,776 Webb vectors; two-sided on the first and last, one-sided 'greater' on the
    others): at most 5% (an upper band: an adjustment may be conservative); the unadjusted rate
    beside them.

    family-wise errors at 5% over 2,000 samples: at most 123 of 2000; correct (0.05) passes with
    probability 0.990; a family-wise error rate of 7.5% fails with probability 0.989.
    """
    from buzzpipe.estimate.study_design_monte_carlo import build_design

    design = build_design(5)
    seeds = FWER.band.trials
    alternatives = ["two-sided", "greater", "greater", "two-sided"]
    counts = {"unadjusted": 0, "holm": 0, "romano_wolf": 0}
    for seed in range(seeds):
        X, y = fwer_sample(np.random.default_rng([20261206, seed]), effects, design)
        bootstrap = WildScoreBootstrap(X, y, design.region, weight_type="webb")
        family = family_test([(bootstrap, k, 0.0, alternatives[k]) for k in range(4)])
        for name, p in (
            ("unadjusted", family.raw),
            ("holm", family.holm),
            ("romano_wolf", family.romano_wolf),
        ):
            counts[name] += bool(np.any(p[true_nulls] <= 0.05))
    rates = {name: count / seeds for name, count in counts.items()}
    print(rates)
    for name in ("holm", "romano_wolf"):
        FWER.band.check(counts[name], f"{name} family-wise errors")
    assert rates["unadjusted"] > rates["romano_wolf"]


def test_literal_step_down_is_itself_checked_on_a_hand_example():
    # two hypotheses, four draws: s = (2, 1); draws s* = [[3, 0, 1, 2], [0, 2, 0, 0]]
    raw, adjusted = literal_step_down([2.0, 1.0], [[3, 0, 1, 2], [0, 2, 0, 0]], ["greater"] * 2)
    assert raw == [0.5, 0.25]
    # step 1: max over both = [3, 2, 1, 2] >= 2 -> 3/4; step 2: [0, 2, 0, 0] >= 1 -> 1/4 -> 3/4
    assert adjusted == [0.75, 0.75]
