"""estimate stage: formula -> design -> Newton over chunks -> Fit with Stata's covariances.

Public API (see each module's docstring)::

    from buzzpipe.estimate import fit, Fit
    from buzzpipe.estimate.design import build_design, Design
    from buzzpipe.estimate.families import get_family   # "logit", "probit", "ologit", "lpm"

    result = fit("product ~ breadth_international + log(employees) + C(industry)", firms,
                 family="logit", vcov={"cluster": "region"}, weights=None)

Modules: ``design`` (formula -> arrays), ``families`` (per-chunk log-likelihood, gradient and
observed Hessian), ``newton`` (the chunked Newton loop), ``diagnostics`` (collinearity,
separation, clusters), ``covariance`` (Stata's conventions), ``fitting`` (the entry point, ``fit``),
``result`` (the Fit object), ``table`` (the Stata-like summary).
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "fit": "buzzpipe.estimate.fitting",
    "fit_design": "buzzpipe.estimate.fitting",
    "Fit": "buzzpipe.estimate.result",
    "build_design": "buzzpipe.estimate.design",
    "Design": "buzzpipe.estimate.design",
    "get_family": "buzzpipe.estimate.families",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'buzzpipe.estimate' has no attribute {name!r}")
