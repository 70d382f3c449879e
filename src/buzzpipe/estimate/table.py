"""Stata-like text table of a :class:`~buzzpipe.estimate.result.Fit` (``fit.summary()``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from buzzpipe.estimate.result import Fit

__all__ = ["summary_table"]

TITLES = {
    "logit": "Logistic regression",
    "probit": "Probit regression",
    "ologit": "Ordered logistic regression",
    "lpm": "Linear regression (linear probability model)",
}


def _number(value: float, width: int = 10) -> str:
    if value is None or not np.isfinite(value):
        return ".".rjust(width)
    text = f"{value:.7g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"
    return text.rjust(width)


def _term(name: str, width: int = 12) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"


def summary_table(fit: Fit, alpha: float = 0.05) -> str:
    """Header statistics, the coefficient table and the notes, as Stata prints them."""
    left: list[str] = []
    right: list[str] = [f"Number of obs     = {fit.nobs:,}"]
    test = fit.model_test()
    if fit.uses_t:
        df = f"F({fit.df_model}, {fit.df_inference:.0f})"
    else:
        df = f"{'Wald' if fit.vcov_type != 'classical' else 'LR'} chi2({fit.df_model})"
    if test is None:
        right.append(f"{df:<18}= .   (not available)")
    elif fit.vcov_type == "classical" and not fit.uses_t:
        lr = 2 * (fit.llf - fit.llnull)
        from scipy import stats

        right.append(f"{df:<18}= {lr:.2f}")
        right.append(f"{'Prob > chi2':<18}= {stats.chi2(fit.df_model).sf(lr):.4f}")
    else:
        right.append(f"{df:<18}= {test.statistic:.2f}")
        right.append(f"{'Prob > ' + ('F' if fit.uses_t else 'chi2'):<18}= {test.p_value:.4f}")
    if fit.uses_t:
        right.append(f"{'R-squared':<18}= {fit.r2:.4f}")
    else:
        right.append(f"{'Pseudo R2':<18}= {fit.pseudo_r2:.4f}")
    label = (
        "Log pseudolikelihood" if fit.weights or fit.vcov_type != "classical" else "Log likelihood"
    )
    left.append(TITLES.get(fit.family, fit.family))
    left.append(f"{label} = {fit.llf:.4f}")
    lines = []
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        lines.append(f"{a:<46}{b}")
    if fit.vcov_type == "cluster":
        lines.append(
            f"{'':>30}(Std. err. adjusted for {fit.n_clusters:,} clusters in {fit.cluster_var})"
        )
    cuts = set(fit.cut_names)
    shown = {
        name: "_cons" if name == "Intercept" else ("/" + name if name in cuts else name)
        for name in fit.params.index
    }
    # Stata truncates term names at 12 characters; formulaic's names are longer, so widen
    width = min(max([12, len(fit.outcome), *map(len, shown.values())]), 40)
    rule = "-" * (width + 1) + "+" + "-" * 64
    statistic = "t" if fit.uses_t else "z"
    level = int(round(100 * (1 - alpha)))
    se_label = {"classical": "", "robust": "Robust", "cluster": "Robust"}[fit.vcov_type]
    lines.append("-" * len(rule))
    lines.append(f"{'':>{width + 1}}|{'':>12}{se_label:>10}")
    lines.append(
        f"{_term(fit.outcome, width):>{width}} | Coefficient  std. err. {statistic:>6}    "
        f"P>|{statistic}|     [{level}% conf. interval]"
    )
    lines.append(rule)
    interval = fit.conf_int(alpha)
    bse, z, p = fit.bse, fit.zvalues, fit.pvalues
    for name in fit.params.index:
        if name == "cut1" and name in cuts:
            lines.append(rule)
        lines.append(
            f"{_term(shown[name], width):>{width}} |{_number(fit.params[name], 11)} "
            f"{_number(bse[name])} {z[name]:7.2f}   {p[name]:6.3f}   "
            f"{_number(interval.loc[name, 'lower'])} {_number(interval.loc[name, 'upper'])}"
        )
    lines.append("-" * len(rule))
    lines.extend(f"Note: {note}" for note in fit.notes)
    return "\n".join(lines)
