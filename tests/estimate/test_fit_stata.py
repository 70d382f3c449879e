"""fit() against published Stata results.

Spector and Mazzeo's data (32 students; statsmodels ships it) with Stata 11's ``logit`` and
``probit`` output, as recorded in statsmodels' test suite (``statsmodels/discrete/tests/results/
results_discrete.py``, class ``Spector``): ``logit grade gpa tuce psi`` and ``probit grade gpa
tuce psi``. The numbers are in ``references/spector_stata.json`` beside the Stata commands that
made them (``references/spector_stata.do``). Stata prints to about seven digits, so the
tolerance is 1e-6 relative.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import fit

REFERENCE = json.loads((Path(__file__).parent / "references" / "spector_stata.json").read_text())
ORDER = REFERENCE["order"]  # Stata lists _cons last
STATA = {family: REFERENCE[family] for family in ("logit", "probit")}


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
# with Stata's N/(N-1) factor)
STATA_SPECTOR_ROBUST_COV = REFERENCE["logit_robust_cov"]


def test_spector_robust_covariance_matches_stata(spector):
    ours = fit("GRADE ~ GPA + TUCE + PSI", spector, vcov="robust")
    stata = np.array(STATA_SPECTOR_ROBUST_COV)
    np.testing.assert_allclose(ours.bse[ORDER], np.sqrt(np.diag(stata)), rtol=1e-6)
    # Stata stops Newton earlier (its b differ from the exact optimum by about 1e-7), which moves
    # small off-diagonal elements by up to 2e-6 relative: compare on the correlation scale
    scale = np.outer(ours.bse[ORDER], ours.bse[ORDER])
    np.testing.assert_allclose(ours.vcov.loc[ORDER, ORDER] / scale, stata / scale, atol=1e-6)
    assert ours.vcov_factor == pytest.approx(32 / 31)
