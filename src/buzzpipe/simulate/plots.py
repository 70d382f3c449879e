"""Figures of a simulation: city time series and experiment summaries (PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from buzzpipe.atomic_write import atomic_path

SERIES_PANELS = (
    ("mean_fitness", "mean fitness"),
    ("frontier_gap", "gap to the world frontier"),
    ("diversity", "knowledge diversity"),
    ("improvement_rate", "firms improving per step"),
)


def _figure(rows: int, columns: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)


def plot_series(series: pd.DataFrame, path: str | Path) -> None:
    """Four panels over time, one line per city (replicates averaged)."""
    plt, figure, axes = _figure(2, 2)
    mean = series.groupby(["city", "step"], observed=True)[[c for c, _ in SERIES_PANELS]].mean()
    for axis, (column, title) in zip(axes.ravel(), SERIES_PANELS, strict=True):
        for city, values in mean[column].groupby(level="city", observed=True):
            axis.plot(values.index.get_level_values("step"), values.to_numpy(), label=str(city),
                      linewidth=1)  # fmt: skip
        axis.set_title(title)
        axis.set_xlabel("step")
    axes[0, 0].legend(fontsize="small")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def plot_experiment(summary: pd.DataFrame, arm: str, path: str | Path) -> None:
    """Indicators by city size for each arm, with two standard errors."""
    panels = (
        ("innovation_rate", "product innovators per window"),
        ("diversity", "knowledge diversity"),
        ("frontier_gap_late", "gap to the world frontier (late)"),
        ("improvement_rate", "firms improving per step"),
    )
    plt, figure, axes = _figure(2, 2)
    for axis, (column, title) in zip(axes.ravel(), panels, strict=True):
        for value, rows in summary.groupby(arm, sort=False):
            rows = rows.sort_values("size")
            axis.errorbar(rows["size"], rows[column], yerr=2 * rows[f"{column}_se"].fillna(0),
                          marker="o", capsize=3, label=f"{arm} = {value}")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("firms in the city")
        axis.set_title(title)
    axes[0, 0].legend(fontsize="small")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
