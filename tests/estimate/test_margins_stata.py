"""margins against Stata's own output on Spector and Mazzeo's data (32 students; statsmodels
ships the data): ``logit grade gpa tuce psi`` then ``margins, dydx(*)`` with and without
``atmeans``, with ``at()`` values, and with ``i.psi`` as a factor. Stata's figures are those
recorded in statsmodels' test suite (``statsmodels/discrete/tests/results/results_discrete.py``,
class ``Spector``, ``logit``); Stata printed the standard errors to seven digits."""

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import fit
from buzzpipe.estimate.margins import margins

VARIABLES = ["GPA", "TUCE", "PSI"]
# margins, dydx(*) (psi continuous)
DYDX = [0.36258084688424, 0.01220841099085, 0.30517768382304]
DYDX_SE = [0.1094412, 0.0177942, 0.0923796]
# margins, dydx(*) atmeans
DYDX_MEAN = [0.53385885781692, 0.01797548988961, 0.44933926079386]
DYDX_MEAN_SE = [0.237038, 0.0262369, 0.1967626]
# margins, dydx(*) at(gpa=2 psi=1) (tuce as observed, averaged over students)
AT_GPA2_PSI1 = [0.1456333017086, 0.00490359933927, 0.12257689308426]
AT_GPA2_PSI1_SE = [0.145633, 0.0111226, 0.1777101]
# margins, dydx(*) at(tuce=21 psi=0) atmeans (gpa at its mean)
AT_TUCE21_PSI0 = [0.25105129214546, 0.00845311433473, 0.2113052923675]
AT_TUCE21_PSI0_SE = [0.1735778, 0.012017, 0.0971515]
# with i.psi: the discrete change of psi from 0 to 1, averaged and at means
PSI_DISCRETE, PSI_DISCRETE_SE = 0.35751515254729, 0.1420034
PSI_DISCRETE_MEAN, PSI_DISCRETE_MEAN_SE = 0.4564984096959, 0.1810537


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
    ("eydx", False): (
        [1.8546366266779, 0.06244722072812, 1.5610138123033],
        [0.847903, 0.0930901, 0.7146715],
    ),
    ("eydx", True): (
        [2.1116143062702, 0.0710998816585, 1.7773072368626],
        [1.076109, 0.1081501, 0.9120842],
    ),
    ("dyex", False): (
        [1.1774000792198, 0.27896245178384, 0.16960002159996],
        [0.3616481, 0.4090679, 0.0635583],
    ),
    ("dyex", True): (
        [1.6641381583512, 0.39433730945339, 0.19658592659731],
        [0.7388917, 0.5755722, 0.0860836],
    ),
    ("eyex", False): (
        [5.4747106798973, 1.3173389907576, 0.44600395466634],
        [2.44682, 1.943525, 0.1567618],
    ),
    ("eyex", True): (
        [6.5822977203268, 1.5597536538833, 0.77757191612739],
        [3.354433, 2.372543, 0.3990368],
    ),
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
