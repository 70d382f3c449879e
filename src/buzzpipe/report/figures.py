"""Figures from a results structure: odds ratios and marginal effects by scale and outcome,
innovation by collaboration regime, and counterfactual programmes by region.

Figures are drawn with matplotlib's object interface (no pyplot state, no display) and saved
with fixed metadata so that the same results give the same PNG and SVG bytes.
"""

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display is ever needed; must precede any backend use
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from buzzpipe.report.intervals import single_segment  # noqa: E402
from buzzpipe.report.tables import displayed_estimate, shows_odds_ratios  # noqa: E402

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
SCALE_COLOURS = {"regional": "#E69F00", "national": "#56B4E9", "international": "#009E73"}
OTHER_COLOURS = ("#CC79A7", "#0072B2", "#D55E00", "#F0E442", "#000000")
PROGRAMME_COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
REGIME_LABELS = {
    "none": "none",
    "local_only": "local only",
    "global_only": "global only",
    "both": "local and global",
}
_STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "buzzpipe",  # stable element ids in SVG output
    "svg.fonttype": "path",  # text as paths: the SVG needs no font from anywhere
}


@dataclass(frozen=True)
class FigureOutput:
    """A rendered figure: its id, title, caption (alt text) and PNG and SVG bytes."""

    id: str
    title: str
    caption: str
    png: bytes
    svg: bytes


def scale_colour(scale: str, index: int) -> str:
    """The colour of a scale; scales outside the default three cycle through spare colours."""
    return SCALE_COLOURS.get(scale, OTHER_COLOURS[index % len(OTHER_COLOURS)])


def headline_model(outcome: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model an outcome's figures show: its ``primary_model``, else its last main model."""
    models = outcome["models"]
    if outcome.get("primary_model"):
        return models[outcome["primary_model"]]
    main = [model for model in models.values() if model.get("table", "main") == "main"]
    return (main or list(models.values()))[-1]


def scale_terms(model: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The breadth-by-scale terms of a model (terms tagged with a scale, not a partner type)."""
    return [
        (name, term)
        for name, term in model["terms"].items()
        if term.get("scale")
        and not term.get("partner_type")
        and term.get("kind", "coefficient") == "coefficient"
    ]


def _scales(results: Mapping[str, Any]) -> list[str]:
    scales = list(results.get("scales", []))
    for outcome in results["outcomes"].values():
        for _, term in scale_terms(headline_model(outcome)):
            if term["scale"] not in scales:
                scales.append(term["scale"])
    return scales


def odds_ratio_figure(results: Mapping[str, Any]) -> Figure | None:
    """Odds ratios (or coefficients) of breadth at each scale, one row group per outcome."""
    outcomes = [
        (key, record)
        for key, record in results["outcomes"].items()
        if scale_terms(headline_model(record))
    ]
    if not outcomes:
        return None
    scales = _scales(results)
    figure = Figure(figsize=(8.0, 1.0 + 0.9 * len(outcomes)))
    axes = figure.add_subplot()
    odds_ratio_scale = all(shows_odds_ratios(headline_model(record)) for _, record in outcomes)
    step = 0.8 / max(len(scales), 1)
    for row, (_, record) in enumerate(outcomes):
        model = headline_model(record)
        for _, term in scale_terms(model):
            shown = displayed_estimate(term, shows_odds_ratios(model) and odds_ratio_scale)
            index = scales.index(term["scale"])
            y = row + (index - (len(scales) - 1) / 2) * step
            colour = scale_colour(term["scale"], index)
            interval_segment(axes, y, single_segment(shown["interval"]), colour)
            axes.plot(
                shown["estimate"],
                y,
                "o",
                color=colour,
                label=term["scale"] if term["scale"] not in _labels(axes) else None,
            )
    axes.axvline(1.0 if odds_ratio_scale else 0.0, color="#777777", linewidth=0.8, linestyle="--")
    if odds_ratio_scale:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
        low, high = axes.get_xlim()
        ticks = [
            tick
            for tick in (0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.75, 2, 3, 4, 6)
            if low <= tick <= high
        ]
        axes.set_xticks(ticks)
    axes.set_yticks(range(len(outcomes)), [record["label"] for _, record in outcomes])
    axes.invert_yaxis()
    axes.set_xlabel(
        "odds ratio per additional kind of partner (95% interval, log scale)"
        if odds_ratio_scale
        else "coefficient per additional kind of partner (95% interval)"
    )
    axes.legend(title="scale", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return figure


INTERVAL_COLOUR = "#333333"


def interval_segment(
    axes, position: float, bounds: tuple[float, float] | None, colour: str, vertical: bool = False
) -> None:
    """An interval drawn from its low to its high end with caps, at a row (or column) position.

    Drawn by its ends rather than as error lengths around the estimate, so an interval that
    does not contain its estimate (a percentile bootstrap's can) is still drawn as it is.
    """
    if bounds is None:
        return
    ends, at = list(bounds), [position, position]
    x, y = (at, ends) if vertical else (ends, at)
    axes.plot(x, y, color=colour, linewidth=1.2)
    axes.plot(x, y, linestyle="none", marker="_" if vertical else "|", markersize=7, color=colour)


def _labels(axes) -> list[str]:
    return [text for text in axes.get_legend_handles_labels()[1]]


def marginal_effects_figure(results: Mapping[str, Any]) -> Figure | None:
    """Average change in the probability of each outcome from one more kind of partner."""
    rows = []
    for record in results["outcomes"].values():
        model = headline_model(record)
        effects = model.get("marginal_effects", {})
        terms = [(name, term) for name, term in scale_terms(model) if name in effects]
        if terms:
            rows.append((record["label"], [(term["scale"], effects[name]) for name, term in terms]))
    if not rows:
        return None
    scales = _scales(results)
    figure = Figure(figsize=(8.0, 1.0 + 0.9 * len(rows)))
    axes = figure.add_subplot()
    width = 0.8 / max(len(scales), 1)
    for row, (_, effects) in enumerate(rows):
        for scale, effect in effects:
            index = scales.index(scale)
            y = row + (index - (len(scales) - 1) / 2) * width
            estimate = 100 * effect["estimate"]
            axes.barh(
                y,
                estimate,
                height=width * 0.9,
                color=scale_colour(scale, index),
                label=scale if scale not in _labels(axes) else None,
            )
            bounds = single_segment(effect.get("interval"))
            if bounds is not None:
                interval_segment(axes, y, (100 * bounds[0], 100 * bounds[1]), INTERVAL_COLOUR)
    axes.axvline(0.0, color="#777777", linewidth=0.8)
    axes.set_yticks(range(len(rows)), [label for label, _ in rows])
    axes.invert_yaxis()
    axes.set_xlabel("percentage points of probability per additional kind of partner")
    axes.legend(title="scale", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return figure


def regimes_figure(results: Mapping[str, Any]) -> Figure | None:
    """Shares of firms in each collaboration regime (none, local only, global only, both),
    overall and by city-region, as stacked bars."""
    records = results.get("regimes", [])
    if not records:
        return None
    regimes: list[str] = []
    for record in records:
        for regime in record["shares"]:
            if regime not in regimes:
                regimes.append(regime)
    figure = Figure(figsize=(8.0, 0.8 + 0.45 * len(records)))
    axes = figure.add_subplot()
    left = [0.0] * len(records)
    colours = ("#BBBBBB", SCALE_COLOURS["regional"], SCALE_COLOURS["international"], "#0072B2")
    for index, regime in enumerate(regimes):
        widths = [100 * (record["shares"].get(regime) or 0.0) for record in records]
        bars = axes.barh(
            range(len(records)),
            widths,
            left=left,
            color=colours[index % len(colours)],
            label=REGIME_LABELS.get(regime, regime),
        )
        axes.bar_label(
            bars,
            labels=[f"{w:.0f}%" if w >= 6 else "" for w in widths],
            label_type="center",
            fontsize=7,
        )
        left = [start + width for start, width in zip(left, widths, strict=True)]
    axes.set_yticks(range(len(records)), [record["group"] for record in records])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("share of firms (%); local = partners in the own city-region, global = abroad")
    axes.legend(title="regime", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    return figure


def counterfactuals_figure(results: Mapping[str, Any]) -> Figure | None:
    """Extra innovating firms by region under each programme, with their intervals."""
    programmes = results.get("counterfactuals", [])
    if not programmes:
        return None
    regions: list[str] = []
    for programme in programmes:
        for row in programme["regions"]:
            if row["region"] not in regions:
                regions.append(row["region"])
    figure = Figure(figsize=(8.0, 3.6 + 0.2 * ((len(programmes) + 1) // 2)))
    axes = figure.add_subplot()
    width = 0.8 / len(programmes)
    for index, programme in enumerate(programmes):
        by_region = {row["region"]: row["extra_innovators"] for row in programme["regions"]}
        positions, extras = [], []
        for region_index, region in enumerate(regions):
            if region not in by_region:
                continue
            positions.append(region_index + (index - (len(programmes) - 1) / 2) * width)
            extras.append(by_region[region])
        axes.bar(
            positions,
            [extra["estimate"] for extra in extras],
            width=width * 0.9,
            color=PROGRAMME_COLOURS[index % len(PROGRAMME_COLOURS)],
            label=programme.get("legend", programme["label"]),
        )
        for position, extra in zip(positions, extras, strict=True):
            bounds = single_segment(extra.get("interval"))
            interval_segment(axes, position, bounds, INTERVAL_COLOUR, vertical=True)
    axes.axhline(0.0, color="#777777", linewidth=0.8)
    axes.set_xticks(range(len(regions)), regions)
    axes.set_ylabel("extra innovating firms (predicted)")
    axes.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.tight_layout()
    return figure


def lock_in_figure(results: Mapping[str, Any]) -> Figure | None:
    """The simulation's cities, largest first: product innovators per survey window with
    pipelines off and on, bars of two standard errors over the replicates."""
    section = results.get("simulation")
    if not section or not section.get("lock_in"):
        return None
    cells = section["lock_in"]
    cities = sorted({(cell["city"], cell["firms"]) for cell in cells}, key=lambda c: -c[1])
    figure = Figure(figsize=(7.0, 3.6))
    axes = figure.add_subplot()
    width = 0.38
    for index, (pipelines, colour, label) in enumerate(
        ((False, "#D55E00", "pipelines off"), (True, "#009E73", "pipelines on (calibrated share)"))
    ):
        by_city = {c["city"]: c for c in cells if c["pipelines"] == pipelines}
        positions = [i + (index - 0.5) * width for i, _ in enumerate(cities)]
        means = [by_city[city]["innovation"] for city, _ in cities]
        errors = [2 * by_city[city]["innovation_se"] for city, _ in cities]
        axes.bar(positions, means, width=width * 0.92, color=colour, label=label)
        axes.errorbar(positions, means, yerr=errors, fmt="none", ecolor=INTERVAL_COLOUR,
                      elinewidth=1.0, capsize=2)  # fmt: skip
    axes.set_xticks(range(len(cities)), [f"{city}\n({firms:,} firms)" for city, firms in cities])
    axes.set_ylabel("share innovating per window")
    axes.set_ylim(bottom=0)
    axes.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    figure.tight_layout()
    return figure


def slope_rows(results: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]]:
    """The first outcome's regional slopes in the view (``region_slopes``): its label and rows."""
    rows = results.get("region_slopes", [])
    if not rows:
        return "", []
    outcome = rows[0]["outcome"]
    return results["outcomes"][outcome]["label"], [r for r in rows if r["outcome"] == outcome]


def region_slopes_figure(results: Mapping[str, Any]) -> Figure | None:
    """Each city-region's own slope of each breadth scale, with its 95% interval, for the first
    outcome with regional slopes: descriptive, no test (five regions cannot support one)."""
    label, rows = slope_rows(results)
    if not rows:
        return None
    regions = list(dict.fromkeys(row["region"] for row in rows))
    scales = list(dict.fromkeys(row["scale"] for row in rows))
    figure = Figure(figsize=(8.0, 1.0 + 0.6 * len(regions)))
    axes = figure.add_subplot()
    step = 0.8 / max(len(scales), 1)
    for row in rows:
        index = scales.index(row["scale"])
        y = regions.index(row["region"]) + (index - (len(scales) - 1) / 2) * step
        colour = scale_colour(row["scale"], index)
        bounds = single_segment(row.get("interval"))
        if bounds is not None:
            interval_segment(axes, y, bounds, colour)
        axes.plot(
            row["estimate"],
            y,
            "o",
            color=colour,
            label=row["scale"] if row["scale"] not in _labels(axes) else None,
        )
    axes.axvline(0.0, color="#777777", linewidth=0.8, linestyle="--")
    axes.set_yticks(range(len(regions)), regions)
    axes.invert_yaxis()
    axes.set_xlabel(f"{label}: coefficient per additional kind of partner (95% interval)")
    axes.legend(title="scale", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return figure


FIGURES = (
    (
        "figure-odds-ratios",
        "Odds ratios of partner breadth by scale and outcome",
        odds_ratio_figure,
    ),
    (
        "figure-marginal-effects",
        "Change in the probability of innovating from one more kind of partner",
        marginal_effects_figure,
    ),
    ("figure-regimes", "Collaboration regimes by city-region", regimes_figure),
    (
        "figure-counterfactuals",
        "Policy programmes: extra innovating firms by city-region",
        counterfactuals_figure,
    ),
    (
        "figure-simulation-lock-in",
        "Lock-in in the simulation: innovation by city with pipelines off and on",
        lock_in_figure,
    ),
    (
        "figure-region-slopes",
        "Slopes of partner breadth by city-region (descriptive, no test)",
        region_slopes_figure,
    ),
)


def render(figure: Figure) -> tuple[bytes, bytes]:
    """PNG and SVG bytes of a figure, with metadata fixed so that bytes repeat."""
    with matplotlib.rc_context({"svg.hashsalt": "buzzpipe", "svg.fonttype": "path"}):
        png, svg = io.BytesIO(), io.BytesIO()
        figure.savefig(png, format="png", dpi=150, metadata={"Software": None})
        figure.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return png.getvalue(), svg.getvalue()


def figure_ids(results: Mapping[str, Any]) -> list[str]:
    """Ids of the figures the results support (drawn but not rendered to bytes)."""
    ids = []
    with matplotlib.rc_context(_STYLE):
        for figure_id, _, draw in FIGURES:
            if draw(results) is not None:
                ids.append(figure_id)
    return ids


def all_figures(results: Mapping[str, Any]) -> list[FigureOutput]:
    """Every figure the results support, rendered, in the order the report shows them."""
    outputs = []
    with matplotlib.rc_context(_STYLE):
        for figure_id, title, draw in FIGURES:
            figure = draw(results)
            if figure is None:
                continue
            png, svg = render(figure)
            outputs.append(FigureOutput(figure_id, title, _caption(figure_id, results), png, svg))
    return outputs


def _caption(figure_id: str, results: Mapping[str, Any]) -> str:
    """A caption naming what is plotted and the inference behind its intervals."""
    inferences = sorted({headline_model(r)["inference"] for r in results["outcomes"].values()})
    inference = "; ".join(inferences)
    without_effects = [
        record["label"]
        for record in results["outcomes"].values()
        if not headline_model(record).get("marginal_effects")
    ]
    left_out = (
        f" Not shown: {', '.join(without_effects)} (no single probability to change)."
        if without_effects
        else ""
    )
    regions = len({row["region"] for row in slope_rows(results)[1]})
    captions = {
        "figure-odds-ratios": "Points are estimates from each outcome's headline model; lines are "
        f"95% intervals ({inference}). The dashed line marks no association.",
        "figure-marginal-effects": "Average change in the probability of innovating, in "
        "percentage points, when each firm gains one more kind of partner at a scale, from each "
        f"outcome's headline model; lines are 95% intervals ({inference}, delta method)."
        + left_out,
        "figure-regimes": "Share of firms in each collaboration regime, among firms whose "
        "answers are known; complementarity is tested in the table of tests.",
        "figure-region-slopes": "Each city-region's own coefficient of partner breadth at each "
        "scale (breadth \u00d7 city-region, with the controls model's other terms); lines are "
        f"95% intervals ({inference}). Descriptive: with {regions} city-regions a comparison of "
        "their slopes rests on that many observations, so no test is made and none is a "
        "verdict.",
        "figure-counterfactuals": "Extra innovating firms each programme is predicted to add "
        "in each city-region, under the model the notes name, assuming breadth is as good as "
        "random (predicted, not caused); black lines are intervals from the study's bootstrap.",
    }
    if figure_id == "figure-simulation-lock-in":
        section = results["simulation"]
        return (
            f"Bars are means over {section['replicates']} replicates of the calibrated "
            f"'{section['scenario']}' world ({section['steps']} steps): the share of each city's "
            "firms that innovate per survey window over the late half of the run; black lines "
            "are two standard errors over the replicates. Pipelines off: no firm has a partner "
            "abroad; on: the calibrated share."
        )
    return captions[figure_id]
