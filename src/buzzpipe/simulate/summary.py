"""What a simulation run did, in a few lines: innovation by city, the gap to the world frontier,
and the simulated survey's odds ratios under the study's controls model.

``buzzpipe simulate`` prints it after the files. The odds ratios come from the same maximum-
likelihood logit the calibration uses (model-based standard errors, not the study's cluster-robust
ones), one fit per replicate; a replicate whose survey cannot be fitted (a partner scale no firm
reports, perfect separation in a tiny economy) is counted and left out, never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from buzzpipe.simulate.calibration import breadth_by_scale, controls_design, logit
from buzzpipe.simulate.run import WORLD, SimulationResult

SCALES = ("regional", "national", "international")  # the breadth columns 1, 2, 3 of the design


def survey_log_odds(result: SimulationResult) -> dict[str, tuple[float, float]] | None:
    """Log odds ratio and model-based standard error per partner type, by scale; None when the
    controls model cannot be fitted to this replicate's survey."""
    x = controls_design(result, breadth_by_scale(result))
    y = result.outcomes.product.astype(float)
    if y.min() == y.max():
        return None
    try:
        with np.errstate(all="ignore"):
            beta, se = logit(y, x)
    except np.linalg.LinAlgError:
        return None
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(se))) or np.abs(beta).max() > 15:
        return None
    return {scale: (float(beta[i]), float(se[i])) for i, scale in enumerate(SCALES, start=1)}


def _mean_se(values: pd.Series) -> tuple[float, float]:
    n = int(values.count())
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def _with_se(mean: float, se: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} (SE {se:.{digits}f})"


def city_table(results: Sequence[SimulationResult]) -> pd.DataFrame:
    """Per replicate and city: last-window product innovators, mean over the reported windows,
    and the gap to the world frontier over the last quarter of the run."""
    rows = []
    for index, result in enumerate(results):
        windows = result.windows
        last = windows[windows["window"] == windows["window"].max()].set_index("city")
        series = result.series[result.series["city"] != WORLD]
        late = series[series["step"] > result.steps - max(result.steps // 4, 1)]
        gap = late.groupby("city", observed=True)["frontier_gap"].mean()
        for name, size in zip(result.cities.names, result.cities.sizes, strict=True):
            rows.append(
                {
                    "replicate": index,
                    "city": name,
                    "firms": int(size),
                    "product_last_window": float(last.loc[name, "product_rate"]),
                    "product_all_windows": float(
                        windows.loc[windows["city"] == name, "product_rate"].mean()
                    ),
                    "frontier_gap_late": float(gap[name]),
                }
            )
    return pd.DataFrame(rows)


def summary_lines(results: Sequence[SimulationResult]) -> list[str]:
    """The printed summary of a single-economy scenario (one or more replicates)."""
    replicates = len(results)
    first = results[0]
    errors = "" if replicates == 1 else f"; SE: standard error over {replicates} replicates"
    lines = [
        f"summary: {first.cities.n_firms} firms in {len(first.cities.names)} cities, "
        f"{first.steps} steps, {replicates} replicate(s){errors}",
        "  city: product innovators (last window | all windows), "
        "gap to the world frontier (fitness, last quarter of the run)",
    ]
    table = city_table(results)
    for name in first.cities.names:
        rows = table[table["city"] == name]
        last, all_windows, gap = (
            _mean_se(rows[column])
            for column in ("product_last_window", "product_all_windows", "frontier_gap_late")
        )
        lines.append(
            f"  {name} ({int(rows['firms'].iloc[0])} firms): {_with_se(*last)} | "
            f"{_with_se(*all_windows)}, gap {_with_se(*gap, digits=4)}"
        )
    fits = [survey_log_odds(result) for result in results]
    fitted = [fit for fit in fits if fit is not None]
    lines.append(
        "  simulated survey, study's controls model (logit of product innovation on partner "
        "types per scale, log employees, foreign ownership, city; model-based errors):"
    )
    if not fitted:
        lines.append("    the controls model cannot be fitted to any replicate's survey")
        return lines
    for scale in SCALES:
        if len(fitted) == 1:
            log_or, se = fitted[0][scale]
            low, high = math.exp(log_or - 1.96 * se), math.exp(log_or + 1.96 * se)
            lines.append(
                f"    odds ratio per {scale} partner type: {math.exp(log_or):.3f} "
                f"(95% CI {low:.3f} to {high:.3f})"
            )
        else:
            values = pd.Series([fit[scale][0] for fit in fitted])
            mean, se = _mean_se(values)
            lines.append(
                f"    odds ratio per {scale} partner type: {math.exp(mean):.3f} "
                f"(exp of the mean log odds ratio over {len(fitted)} replicates; "
                f"95% band over replicates {math.exp(mean - 1.96 * se):.3f} to "
                f"{math.exp(mean + 1.96 * se):.3f})"
            )
    if len(fitted) < replicates:
        lines.append(f"    {replicates - len(fitted)} replicate(s) could not be fitted (left out)")
    return lines


def experiment_summary_lines(summary: pd.DataFrame, arm: str, replicates: int) -> list[str]:
    """The printed summary of an experiment: innovation and frontier gap by arm and city."""
    lines = [
        f"summary: {arm} experiment, {replicates} replicate(s); mean over replicates "
        f"(SE: standard error over {replicates} replicates)",
        "  arm, city: product innovators per window (late half), "
        "gap to the world frontier (last quarter)",
    ]
    for row in summary.itertuples(index=False):
        row = row._asdict()
        lines.append(
            f"  {arm} = {row[arm]}, {row['city']} ({int(row['size'])} firms): "
            f"{_with_se(row['innovation_rate'], row['innovation_rate_se'])}, gap "
            f"{_with_se(row['frontier_gap_late'], row['frontier_gap_late_se'], digits=4)}"
        )
    return lines
