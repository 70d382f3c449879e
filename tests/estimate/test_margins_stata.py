"""margins against Stata's own output on Spector and Mazzeo's data (32 students; statsmodels
ships the data): ``logit grade gpa tuce psi`` then ``margins, dydx(*)`` with and without
``atmeans``, with ``at()`` values, and with ``i.psi`` as a factor. Stata's figures are those
recorded in statsmodels' test suite (``statsmodels/discrete/tests/results/results_discrete.py``,
class ``Spector``, ``logit``), kept in ``references/spector_stata.json`` beside the Stata commands
(``references/spector_stata.do``); Stata printed the standard errors to seven digits."""

import json
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import fit
from buzzpipe.estimate.margins import margins

MARGINS = json.loads((Path(__file__).parent / "references" / "spector_stata.json").read_text())[
    "margins"
]
VARIABLES = MARGINS["variables"]
# margins, dydx(*) (psi continuous)
DYDX, DYDX_SE = MARGINS["dydx"]["estimate"], MARGINS["dydx"]["se"]
# margins, dydx(*) atmeans
DYDX_MEAN, DYDX_MEAN_SE = MARGINS["dydx_atmeans"]["estimate"], MARGINS["dydx_atmeans"]["se"]
# margins, dydx(*) at(gpa=2 psi=1) (tuce as observed, averaged over students)
AT_GPA2_PSI1 = MARGINS["dydx_at_gpa2_psi1"]["estimate"]
AT_GPA2_PSI1_SE = MARGINS["dydx_at_gpa2_psi1"]["se"]
# margins, dydx(*) at(tuce=21 psi=0) atmeans (gpa at its mean)
AT_TUCE21_PSI0 = MARGINS["dydx_at_tuce21_psi0_atmeans"]["estimate"]
AT_TUCE21_PSI0_SE = MARGINS["dydx_at_tuce21_psi0_atmeans"]["se"]
# with i.psi: the discrete change of psi from 0 to 1, averaged and at means
PSI_DISCRETE, PSI_DISCRETE_SE = MARGINS["psi_discrete"]["estimate"], MARGINS["psi_discrete"]["se"]
PSI_DISCRETE_MEAN = MARGINS["psi_discrete_atmeans"]["estimate"]
PSI_DISCRETE_MEAN_SE = MARGINS["psi_discrete_atmeans"]["se"]


@pytest.fixture(scope="module")
def spector():
    data = sm.datasets.spector.load_pandas().data
    return data, fit("GRADE ~ GPA + TUCE + PSI", data, family="logit")


def assert_stata(result, estimates, errors):
    np.testing.assert_allclose(result.estimate.to_numpy(), estimates, rtol=1e-6)
    # Stata printed seven digits: half a unit in the last place
    np.testing.assert_allclose(result.se.to_numpy(), errors, rtol=6e-7, atol=5e-8)


def test_average_marginal_effects_equal_stata(spector):
    data, model = spector
    assert_stata(margins(model, data, VARIABLES), DYDX, DYDX_SE)


def test_effects_at_means_equal_stata(spector):
    data, model = spector
    assert_stata(margins(model, data, VARIABLES, at_means=True), DYDX_MEAN, DYDX_MEAN_SE)


@pytest.mark.parametrize(
    ("at", "at_means", "estimates", "errors"),
    [
        ({"GPA": 2.0, "PSI": 1.0}, False, AT_GPA2_PSI1, AT_GPA2_PSI1_SE),
        ({"TUCE": 21.0, "PSI": 0.0}, True, AT_TUCE21_PSI0, AT_TUCE21_PSI0_SE),
    ],
)
def test_effects_at_chosen_values_equal_stata(spector, at, at_means, estimates, errors):
    data, model = spector
    result = margins(model, data, VARIABLES, at=at, at_means=at_means)
    assert_stata(result, estimates, errors)


def test_discrete_change_of_an_indicator_equals_stata(spector):
    data, model = spector
    average = margins(model, data, "PSI", kind="discrete")
    assert average.estimate.iloc[0] == pytest.approx(PSI_DISCRETE, rel=1e-6)
    assert average.se.iloc[0] == pytest.approx(PSI_DISCRETE_SE, abs=5e-8)
    at_means = margins(model, data, "PSI", kind="discrete", at_means=True)
    assert at_means.estimate.iloc[0] == pytest.approx(PSI_DISCRETE_MEAN, rel=1e-6)
    assert at_means.se.iloc[0] == pytest.approx(PSI_DISCRETE_MEAN_SE, abs=5e-8)


# margins, eydx(*) / dyex(*) / eyex(*), averaged and with atmeans (psi continuous)
ELASTICITIES = {
    (kind, at_means): (entry["estimate"], entry["se"])
    for kind in ("eydx", "dyex", "eyex")
    for at_means, entry in (
        (False, MARGINS["elasticities"][kind]),
        (True, MARGINS["elasticities"][f"{kind}_atmeans"]),
    )
}


@pytest.mark.parametrize(("kind", "at_means"), list(ELASTICITIES))
def test_elasticities_equal_stata(spector, kind, at_means):
    data, model = spector
    estimates, errors = ELASTICITIES[(kind, at_means)]
    result = margins(model, data, VARIABLES, kind=kind, at_means=at_means)
    np.testing.assert_allclose(result.estimate.to_numpy(), estimates, rtol=1e-6)
    np.testing.assert_allclose(result.se.to_numpy(), errors, rtol=1e-6, atol=5e-7)


def test_all_variables_star_as_stata_dydx_star(spector):
    data, model = spector
    result = margins(model, data, "*")
    assert list(result["term"]) == VARIABLES
    assert_stata(result, DYDX, DYDX_SE)
