"""A Newton loop whose line search stalls is not converged: before, a step halved until it
moved no parameter by ``tol`` was reported as convergence, with the gradient still large."""

import numpy as np

from buzzpipe.estimate.families import get_family
from buzzpipe.estimate.newton import newton

CLIFF = 1e-10  # the objective falls off a cliff just past the start: only tiny steps are uphill


def _cliff_sums(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """-(x - 1)^2 with its gradient and Hessian, except that the reported log-likelihood
    drops to -1e9 beyond ``CLIFF``: the Newton step (to 1) is halved 34 times."""
    x = float(params[0])
    llf = -((x - 1.0) ** 2) if x <= CLIFF else -1e9
    return llf, np.array([-2.0 * (x - 1.0)]), np.array([[-2.0]])


def test_a_stalled_line_search_is_not_reported_as_converged():
    result = newton(get_family("logit"), [], np.zeros(1), sums=_cliff_sums)
    assert abs(result.gradient[0]) > 1.9  # the point reached is far from the maximum
    assert not result.converged
    assert result.message.startswith("line search stalled")
