"""Figures of a simulation: city time series and experiment summaries (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from buzzpipe.atomic_write import atomic_path

SERIES_PANELS = (
    ("mean_fitness", "mean fitness", "fitness (mean locus contribution, 0 to 1)"),
    ("frontier_gap", "gap to the world frontier", "world best minus city mean fitness"),
    ("diversity", "knowledge diversity", "mean pairwise Hamming distance / N"),
    ("improvement_rate", "firms improving per step", "share of the city's firms"),
)
EXPERIMENT_PANELS = (
    ("innovation_rate", "product innovators per window", "share of firms (late half)"),
    ("diversity", "knowledge diversity", "mean pairwise Hamming distance / N"),
    ("frontier_gap_late", "gap to the world frontier (late)", "world best minus city mean"),
    ("improvement_rate", "firms improving per step", "share of firms (late half)"),
)


def replicate_note(replicates: int, marks: str, errors: str) -> str:
    """What a figure's marks and error bars or bands are: the caption every simulation figure
    carries (``marks`` "lines" or "points", ``errors`` "bands" or "bars")."""
    if replicates <= 1:
        return f"{marks}: one replicate, no {errors} (a single run has no standard error)"
    return (
        f"{marks}: mean over {replicates} replicates; {errors}: +/- 2 standard errors over "
        f"{replicates} replicates"
    )


def _figure(rows: int, columns: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)


def _save(plt, figure, path: str | Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def series_figure(series: pd.DataFrame):
    """Four panels over time, one line per city: the mean over replicates, and with more than
    one replicate a band of two standard errors over them. Returns (pyplot, figure)."""
    replicates = int(series["replicate"].nunique()) if "replicate" in series else 1
    plt, figure, axes = _figure(2, 2)
    columns = [c for c, *_ in SERIES_PANELS]
    grouped = series.groupby(["city", "step"], observed=True)[columns]
    mean = grouped.mean()
    error = grouped.std(ddof=1) / np.sqrt(replicates) if replicates > 1 else None
    for axis, (column, title, unit) in zip(axes.ravel(), SERIES_PANELS, strict=True):
        for city, values in mean[column].groupby(level="city", observed=True):
            steps = values.index.get_level_values("step")
            (line,) = axis.plot(steps, values.to_numpy(), label=str(city), linewidth=1)
            if error is not None:
                band = 2 * error[column].loc[city].to_numpy()
                axis.fill_between(steps, values.to_numpy() - band, values.to_numpy() + band,
                                  color=line.get_color(), alpha=0.2, linewidth=0)  # fmt: skip
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.set_ylabel(unit, fontsize="small")
    axes[0, 0].legend(fontsize="small")
    figure.suptitle(replicate_note(replicates, "lines", "bands"), fontsize="small")
    figure.tight_layout()
    return plt, figure


def plot_series(series: pd.DataFrame, path: str | Path) -> None:
    """``series_figure`` written as PNG."""
    _save(*series_figure(series), path)


def experiment_figure(summary: pd.DataFrame, arm: str, replicates: int):
    """Indicators by city size for each arm: mean over replicates, bars of two standard errors
    over them. Returns (pyplot, figure)."""
    plt, figure, axes = _figure(2, 2)
    for axis, (column, title, unit) in zip(axes.ravel(), EXPERIMENT_PANELS, strict=True):
        for value, rows in summary.groupby(arm, sort=False):
            rows = rows.sort_values("size")
            axis.errorbar(rows["size"], rows[column], yerr=2 * rows[f"{column}_se"].fillna(0),
                          marker="o", capsize=3, label=f"{arm} = {value}")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("firms in the city")
        axis.set_ylabel(unit, fontsize="small")
        axis.set_title(title)
    axes[0, 0].legend(fontsize="small")
    figure.suptitle(replicate_note(replicates, "points", "bars"), fontsize="small")
    figure.tight_layout()
    return plt, figure


def plot_experiment(summary: pd.DataFrame, arm: str, replicates: int, path: str | Path) -> None:
    """``experiment_figure`` written as PNG."""
    _save(*experiment_figure(summary, arm, replicates), path)
