"""The published figures of the study a preset was calibrated to, and what a replica reads for each.

A report of a synthetic survey drawn from ``norway2010`` sets the replica beside the published
study (Fitjar and Rodriguez-Pose 2011, Environment and Planning A 43(6); the product share from
their Research Policy 2013 paper on the same survey): each figure as published, and the results
path the report reads for the replica's own value. ``reads`` is one of

- ``share:<scale>``: the share of firms with a partner at that scale (the descriptive table);
- ``share:outcome:<outcome>``: the share of innovators;
- ``odds_ratio:<results path>``: a breadth coefficient as an odds ratio per partner type;
- ``four_times``: the pipelines-versus-buzz comparison on the probability scale (the +1-partner
  changes, their difference and ratio);
- ``verdict:<finding>``: the study's verdict on the primary outcome.

``expect`` says what agreeing means: ``value`` (the published value lies in the replica's
interval), ``no_effect`` (the interval contains no effect), ``effect`` (the replica's rule finds
it), ``not_found`` (the verdict is "not found"). This module knows nothing of results: the report
resolves the paths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SOURCE = "Fitjar and Rodriguez-Pose 2011 (Environment and Planning A 43(6))"


@dataclass(frozen=True)
class PublishedFigure:
    """One published figure: the fact, its published wording and value, what the replica reads."""

    id: str
    fact: str
    published: str
    value: float | None
    reads: str
    expect: str
    source: str = SOURCE

    def as_record(self) -> dict:
        return asdict(self)


NORWAY_2010: tuple[PublishedFigure, ...] = (
    PublishedFigure(
        "any_regional",
        "Firms with a partner in their own city-region",
        "about 80%",
        0.80,
        "share:regional",
        "value",
    ),
    PublishedFigure(
        "any_international",
        "Firms with a partner abroad (global pipelines)",
        "about 45%",
        0.45,
        "share:international",
        "value",
    ),
    PublishedFigure(
        "product_share",
        "Product innovators",
        "763 of 1,604 (47.6%)",
        0.476,
        "share:outcome:product",
        "value",
        "Fitjar and Rodriguez-Pose 2013 (Research Policy 42(1))",
    ),
    PublishedFigure(
        "odds_ratio_international",
        "Odds of product innovation per kind of international partner",
        "+26% (odds ratio about 1.26)",
        1.26,
        "odds_ratio:models/product/controls/breadth_international",
        "value",
    ),
    PublishedFigure(
        "regional_effect",
        "Regional partner diversity",
        "negligible, insignificant",
        None,
        "odds_ratio:models/product/controls/breadth_regional",
        "no_effect",
    ),
    PublishedFigure(
        "national_effect",
        "National partner diversity",
        "negligible, insignificant",
        None,
        "odds_ratio:models/product/controls/breadth_national",
        "no_effect",
    ),
    PublishedFigure(
        "four_times",
        "Pipelines against local interaction",
        "'as much as four times more powerful'",
        4.0,
        "four_times",
        "effect",
    ),
    PublishedFigure(
        "new_to_market",
        "Firms with more international partners introduce more new-to-market innovations",
        "found",
        None,
        "odds_ratio:models/new_to_market/controls/breadth_international",
        "effect",
    ),
    PublishedFigure(
        "complementarity",
        "Pipelines and clusters complementary",
        "not complementary",
        None,
        "verdict:complementarity",
        "not_found",
    ),
    PublishedFigure(
        "spillover",
        "Pipeline knowledge passed on to other local firms",
        "not found",
        None,
        "verdict:spillover",
        "not_found",
    ),
)

# preset name -> the published figures it was calibrated to (presets without a study: none)
PUBLISHED: dict[str, tuple[PublishedFigure, ...]] = {"norway2010": NORWAY_2010}


def published_figures(preset_name: str) -> list[dict]:
    """The published figures of the study a preset replicates, as records ([] when none)."""
    return [figure.as_record() for figure in PUBLISHED.get(preset_name, ())]
