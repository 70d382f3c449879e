"""The few-clusters Monte Carlo: design checks (fast) and the size and power claims (slow)."""

import tomllib
from pathlib import Path

import numpy as np
import pytest
from bands import Band, Claim, at_least, states

from buzzpipe.estimate import few_clusters_monte_carlo as mc

PRESET = Path(__file__).parents[2] / "src/buzzpipe/synth/presets/norway2010.toml"


def test_cluster_sizes_follow_the_preset_shares():
    design = mc.MonteCarloDesign()
    five = mc.cluster_sizes(5, design)
    assert five.sum() == 1604 and len(five) == 5
    np.testing.assert_allclose(five / 1604, design.region_shares, atol=1 / 1604 + 1e-12)
    for n_clusters in (10, 30, 100):
        sizes = mc.cluster_sizes(n_clusters, design)
        assert sizes.sum() == 1604 and len(sizes) == n_clusters
        # each city-region split into equal parts: the parts of a region differ by at most one
        parts = sizes.reshape(5, n_clusters // 5)
        assert (parts.max(axis=1) - parts.min(axis=1) <= 1).all()
        np.testing.assert_array_equal(parts.sum(axis=1), five)
    with pytest.raises(ValueError, match="multiple of 5"):
        mc.cluster_sizes(12, design)
    if PRESET.exists():  # the synth preset, where it is merged in
        preset = tomllib.loads(PRESET.read_text())
        assert tuple(preset["survey"]["region_shares"]["value"]) == design.region_shares
        assert preset["survey"]["firms"]["value"] == design.firms


def test_stated_intracluster_correlations():
    values = mc.intracluster_correlations(100, seed=3, samples=20)
    assert values["x"] == pytest.approx(0.5, abs=0.05)  # rho_x, less the -1/G bias
    assert 0.03 < values["y"] < 0.08 and 0.01 < values["score"] < 0.04
    uncorrelated = mc.MonteCarloDesign(rho_x=0.0, sigma_u=0.0)
    flat = mc.intracluster_correlations(100, seed=3, design=uncorrelated, samples=20)
    assert abs(flat["x"]) < 0.02 and abs(flat["score"]) < 0.02


def test_replications_are_reproducible_and_rademacher_cannot_reject_with_five_clusters():
    first = mc.run_cell(5, 20, seed=1)
    again = mc.run_cell(5, 20, seed=1)
    assert first.rejection == again.rejection
    assert first.rejection["wild_rademacher"] == 0.0  # smallest attainable p is 1/16
    assert set(first.mc_se) == set(mc.TESTS)
    assert "| 5 | 20 |" in mc.table([first])


REPLICATIONS = 5000
# rates over 5,000 replications are read as counts and banded (tests/bands.py)
NOMINAL = Claim(
    "rejections at 5% over 5,000 samples (within 3 Monte Carlo errors)",
    Band(REPLICATIONS, 204, 296),
    0.05,
    (("size 6.5%", 0.065), ("size 3.5%", 0.035)),
)
WALD_EXCESS = Claim(
    "cluster-robust Wald rejections at G = 100 (measured 0.0666)",
    at_least(REPLICATIONS, 0.0666),
    0.0666,
    (("a Wald test of nominal size", 0.05),),
)
WALD_BELOW_FIRM = Claim(
    "cluster-robust Wald rejections below 8% (measured 0.0666)",
    Band(REPLICATIONS, 0, 399),
    0.0666,
    (("the firm-level test's over-rejection (measured 0.137)", 0.137),),
)
FIRM_EXCESS = Claim(
    "firm-level robust rejections above 5% + 5 Monte Carlo errors (measured 0.137)",
    Band(REPLICATIONS, 404, REPLICATIONS),
    0.137,
    (("a firm-level test of nominal size", 0.05),),
)
POWER_REPLICATIONS = 1000
PUBLISHED_POWER = Claim(
    "bootstrap detections of the published effect at G = 30 (measured 0.668)",
    Band(POWER_REPLICATIONS, 501, POWER_REPLICATIONS),
    0.668,
    (("half that power", 0.334),),
)


def count(rate: float, replications: int = REPLICATIONS) -> int:
    return round(rate * replications)


@pytest.mark.slow
@states(NOMINAL, WALD_BELOW_FIRM, FIRM_EXCESS)
def test_size_with_one_hundred_clusters_is_nominal_for_the_bootstrap():
    """Finding (docs/few_clusters.md): with the preset's unequal region sizes the cluster-robust
    Wald test still over-rejects at G = 100 (6.7%, 4.7 Monte Carlo errors), but far less than
    the firm-level robust test, which ignores the within-region correlation.

    rejections at 5% over 5,000 samples (within 3 Monte Carlo errors): 204 to 296 of 5000; correct
    (0.05) passes with probability 0.997; size 6.5% fails with probability 0.950; size 3.5% fails
    with probability 0.984.
    cluster-robust Wald rejections below 8% (measured 0.0666): at most 399 of 5000; correct
    (0.0666) passes with probability 0.999; the firm-level test's over-rejection (measured 0.137)
    fails with probability 1.000.
    firm-level robust rejections above 5% + 5 Monte Carlo errors (measured 0.137): at least 404 of
    5000; correct (0.137) passes with probability 1.000; a firm-level test of nominal size fails
    with probability 1.000.
    """
    cell = mc.run_cell(100, REPLICATIONS, seed=20110601)
    for test in ("wild_rademacher", "wild_webb"):
        NOMINAL.band.check(count(cell.rejection[test]), test)
    assert cell.rejection["cluster_wald"] > 0.05
    WALD_BELOW_FIRM.band.check(count(cell.rejection["cluster_wald"]), "cluster_wald")
    FIRM_EXCESS.band.check(count(cell.rejection["firm_robust"]), "firm_robust")


@pytest.mark.slow
@states(NOMINAL, FIRM_EXCESS)
def test_size_with_one_hundred_equal_clusters_is_nominal_for_every_clustered_test():
    """Equal city-regions: every clustered test holds its size at G = 100 (the firm-level one
    does not; measured 0.102 here, and the claim below is stated at the main design's 0.137).

    rejections at 5% over 5,000 samples (within 3 Monte Carlo errors): 204 to 296 of 5000; correct
    (0.05) passes with probability 0.997; size 6.5% fails with probability 0.950; size 3.5% fails
    with probability 0.984.
    firm-level robust rejections above 5% + 5 Monte Carlo errors (measured 0.137): at least 404 of
    5000; correct (0.137) passes with probability 1.000; a firm-level test of nominal size fails
    with probability 1.000.
    """
    design = mc.MonteCarloDesign(region_shares=(0.2,) * 5)
    cell = mc.run_cell(100, REPLICATIONS, seed=20110601, design=design)
    for test in ("cluster_wald", "wild_rademacher", "wild_webb"):
        NOMINAL.band.check(count(cell.rejection[test]), test)
    FIRM_EXCESS.band.check(count(cell.rejection["firm_robust"]), "firm_robust")


@pytest.mark.slow
@states(WALD_EXCESS, NOMINAL)
def test_wald_over_rejection_at_one_hundred_needs_unequal_sizes_and_a_regional_regressor():
    """docs/few_clusters.md, "Why the cluster-robust Wald test misses 5% at G = 100".

    cluster-robust Wald rejections at G = 100 (measured 0.0666): at least 293 of 5000; correct
    (0.0666) passes with probability 0.990; a Wald test of nominal size fails with probability
    0.996.
    rejections at 5% over 5,000 samples (within 3 Monte Carlo errors): 204 to 296 of 5000; correct
    (0.05) passes with probability 0.997; size 6.5% fails with probability 0.950; size 3.5% fails
    with probability 0.984.
    """
    preset = mc.wald_size_check(100, REPLICATIONS, seed=20110601)
    WALD_EXCESS.band.check(count(preset.rejection_normal), "preset design")  # the finding: 6.7%
    assert preset.effective_clusters < 55
    contrasts = {
        "equal sizes": (100, mc.MonteCarloDesign(region_shares=(0.2,) * 5)),
        "no regional component in x": (100, mc.MonteCarloDesign(rho_x=0.0)),
        "more clusters of the same inequality": (400, mc.MonteCarloDesign()),
    }
    for name, (n_clusters, design) in contrasts.items():
        check = mc.wald_size_check(n_clusters, REPLICATIONS, seed=20110601, design=design)
        NOMINAL.band.check(count(check.rejection_normal), name)


@pytest.mark.slow
def test_size_with_five_city_regions_is_a_finding_not_a_pass():
    cell = mc.run_cell(5, 5000, seed=20110601)
    # reported in docs/few_clusters.md; here only what must hold whatever the numbers
    assert cell.rejection["wild_rademacher"] == 0.0
    assert cell.rejection["cluster_wald"] > cell.rejection["wild_webb"]


@pytest.mark.slow
@states(PUBLISHED_POWER)
def test_the_bootstrap_detects_the_published_effect():
    """The published coefficient (0.23, odds ratio 1.26) at G = 30.

    bootstrap detections of the published effect at G = 30 (measured 0.668): at least 501 of 1000;
    correct (0.668) passes with probability 1.000; half that power fails with probability 1.000.
    """
    design = mc.MonteCarloDesign(beta=0.23)
    cell = mc.run_cell(30, POWER_REPLICATIONS, seed=7, design=design)
    for test in ("wild_webb", "wild_rademacher"):
        PUBLISHED_POWER.band.check(count(cell.rejection[test], POWER_REPLICATIONS), test)


@pytest.mark.slow
def test_confidence_sets_cover_exactly_when_the_test_accepts():
    assert mc.check_duality(5, 20, seed=5) == 0
    assert mc.check_duality(30, 20, seed=5) == 0


@pytest.mark.filterwarnings("ignore:only")
def test_wald_standard_errors_match_the_core_and_statsmodels():
    import pandas as pd
    import statsmodels.api as sm

    from buzzpipe.estimate import fit

    design = mc.MonteCarloDesign()
    clusters = np.repeat(np.arange(10), mc.cluster_sizes(10, design))
    X, y = mc.simulate_sample(np.random.default_rng(4), clusters, design)
    frame = pd.DataFrame({"x": X[:, 1], "z": X[:, 2], "y": y, "region": clusters})
    cluster_fit = fit("y ~ x + z", frame, family="logit", vcov={"cluster": "region"})
    robust_fit = fit("y ~ x + z", frame, family="logit", vcov="robust")
    cluster_se, robust_se = mc.wald_standard_errors(X, y, clusters, cluster_fit.params.to_numpy())
    assert cluster_se == pytest.approx(cluster_fit.bse["x"], rel=1e-7)
    assert robust_se == pytest.approx(robust_fit.bse["x"], rel=1e-7)
    # statsmodels' HC0 times N/(N-1) is Stata's robust convention
    hc0 = sm.Logit(y, X).fit(disp=0, cov_type="HC0").bse[1]
    n = len(y)
    assert robust_se == pytest.approx(hc0 * np.sqrt(n / (n - 1)), rel=1e-6)


def test_wald_size_check_uses_the_same_samples_as_the_monte_carlo():
    check = mc.wald_size_check(10, 40, seed=1)
    cell = mc.run_cell(10, 40, seed=1)
    assert check.rejection_normal == cell.rejection["cluster_wald"]
    assert check.rejection_t <= check.rejection_normal  # t(9) has the larger critical value
    assert "G* =" in check.line()


def test_effective_number_of_clusters_sees_the_unequal_sizes():
    preset = mc.wald_size_check(100, 100, seed=2)
    equal = mc.wald_size_check(
        100, 100, seed=2, design=mc.MonteCarloDesign(region_shares=(0.2,) * 5)
    )
    # docs/few_clusters.md: G* = 45 with the preset's sizes, 100 with equal ones (5,000 samples)
    assert 35 < preset.effective_clusters < 55
    assert equal.effective_clusters > 90
    assert preset.largest_variance_share > 2 * equal.largest_variance_share
