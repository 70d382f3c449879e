"""fit() against published Stata results.

Spector and Mazzeo's data (32 students; statsmodels ships it) with Stata 11's ``logit`` and
``probit`` output as stored in statsmodels' ``statsmodels/discrete/tests/results/
results_discrete.py`` (class ``Spector``): ``logit grade gpa tuce psi`` and ``probit grade gpa
tuce psi``. Stata prints to about seven digits, so the tolerance is 1e-6 relative.
"""

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import fit

ORDER = ["GPA", "TUCE", "PSI", "Intercept"]  # Stata lists _cons last

STATA = {
    "logit": {
        "params": [2.82611297201, 0.0951576702557, 2.37868772835, -13.0213483201],
        "cov": [
            [1.59502033639, -0.036920566629, 0.427615725153, -4.57347950298],
            [-0.036920566629, 0.0200375937069, 0.0149126464275, -0.346255757562],
            [0.427615725153, 0.0149126464275, 1.13329715236, -2.35916128427],
            [-4.57347950298, -0.346255757562, -2.35916128427, 24.3179625937],
        ],
        "llf": -12.8896334653335,
        "llnull": -20.5917296966173,
        "prsquared": 0.374038332124624,
        "aic": 33.779266930667,
        "bic": 39.642210541866,
        "z": [2.237723415, 0.6722348408, 2.234423721, -2.640537645],
        "pvalues": [0.0252390974, 0.5014342039, 0.0254552063, 0.0082774596],
    },
    "probit": {
        "params": [1.62581025407, 0.051728948442, 1.42633236818, -7.45232041607],
        "cov": [
            [0.481472955383, -0.01891350017, 0.105439226234, -1.1696681354],
            [-0.01891350017, 0.00703757594, 0.002471864882, -0.101172838897],
            [0.105439226234, 0.002471864882, 0.354070126802, -0.594791776765],
            [-1.1696681354, -0.101172838897, -0.594791776765, 6.46416639958],
        ],
        "llf": -12.8188033249334,
        "llnull": -20.5917296966173,
        "prsquared": 0.377478069409622,
        "aic": 33.637606649867,
        "bic": 39.500550261066,
        "z": [2.343062695, 0.6166263836, 2.397044489, -2.931131182],
        "pvalues": [0.0191261688, 0.537481188, 0.0165279168, 0.0033773013],
    },
}


@pytest.fixture(scope="module")
def spector():
    return sm.datasets.spector.load_pandas().data


@pytest.mark.parametrize("family", ["logit", "probit"])
def test_spector_matches_stata(spector, family):
    stata = STATA[family]
    ours = fit("GRADE ~ GPA + TUCE + PSI", spector, family=family)
    np.testing.assert_allclose(ours.params[ORDER], stata["params"], rtol=1e-6)
    np.testing.assert_allclose(ours.vcov.loc[ORDER, ORDER], stata["cov"], rtol=1e-6)
    np.testing.assert_allclose(ours.zvalues[ORDER], stata["z"], rtol=1e-6)
    np.testing.assert_allclose(ours.pvalues[ORDER], stata["pvalues"], rtol=1e-6)
    for name in ("llf", "llnull", "aic", "bic"):
        # Stata stores the log-likelihood to about 8 digits (-12.8896334653 vs -12.8896342221)
        assert getattr(ours, name) == pytest.approx(stata[name], rel=1e-7)
    assert ours.pseudo_r2 == pytest.approx(stata["prsquared"], rel=1e-7)
    assert ours.nobs == 32 and ours.df_model == 3


def test_spector_summary_header_and_odds_ratios_read_like_stata(spector):
    """Header values follow from Stata's stored llf and llnull (LR chi2(3) = 15.40, Pseudo R2 =
    0.3740); GPA's odds ratio and its error are exp(b) = 16.87972 and exp(b) * se = 21.31809
    computed from Stata's published b and se (what `logit, or` prints)."""
    result = fit("GRADE ~ GPA + TUCE + PSI", spector)
    text = result.summary()
    assert "LR chi2(3)        = 15.40" in text
    assert "Prob > chi2       = 0.0015" in text
    assert "Pseudo R2         = 0.3740" in text
    assert "Log likelihood = -12.8896" in text
    odds = result.odds_ratios()
    assert odds.loc["GPA", "odds_ratio"] == pytest.approx(16.87972, rel=1e-6)
    assert odds.loc["GPA", "std_err"] == pytest.approx(21.31809, rel=1e-6)


# Stata: `glm grade gpa tuce psi, family(binomial) vce(robust)` (the logit model, robust errors
# with Stata's N/(N-1) factor), as stored in statsmodels' discrete/tests/results/
# results_glm_logit_constrained.py (results_noconstraint_robust)
STATA_SPECTOR_ROBUST_COV = [
    [1.6585006464861, 0.00630184631279, 0.20368998146717, -5.7738061195745],
    [0.00630184631279, 0.01435422935215, 0.01997066738212, -0.34768562593344],
    [0.20368998146717, 0.01997066738212, 0.96010763867432, -1.5315997267117],
    [-5.7738061195745, -0.34768562593344, -1.5315997267117, 27.886335102141],
]


def test_spector_robust_covariance_matches_stata(spector):
    ours = fit("GRADE ~ GPA + TUCE + PSI", spector, vcov="robust")
    stata = np.array(STATA_SPECTOR_ROBUST_COV)
    np.testing.assert_allclose(ours.bse[ORDER], np.sqrt(np.diag(stata)), rtol=1e-6)
    # Stata stops Newton earlier (its b differ from the exact optimum by about 1e-7), which moves
    # small off-diagonal elements by up to 2e-6 relative: compare on the correlation scale
    scale = np.outer(ours.bse[ORDER], ours.bse[ORDER])
    np.testing.assert_allclose(ours.vcov.loc[ORDER, ORDER] / scale, stata / scale, atol=1e-6)
    assert ours.vcov_factor == pytest.approx(32 / 31)
