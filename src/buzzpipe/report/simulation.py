"""The simulation section of the report (``replicate --simulate``): its view.

From the ``simulation`` record of ``results.json`` (``buzzpipe.results.simulation``): the
calibration's fit, the programmes in the simulation beside the study's regression
counterfactuals, the lock-in cells and the pipeline effect under the default and the symmetric
rules, with labels in words; the tables are built in ``tables``, the lock-in figure in
``figures``.
"""

from __future__ import annotations

import math
from typing import Any

from buzzpipe.results.simulation import SimulationEvidence
from buzzpipe.results.vocabulary import Programme

MOMENT_LABELS = {
    "regional_share": "Firms with a regional partner",
    "international_share": "Firms with a partner abroad",
    "product_share": "Product innovators",
    "log_or_international": "Log odds ratio per international partner type",
    "log_or_regional": "Log odds ratio per regional partner type",
    "log_or_national": "Log odds ratio per national partner type",
    "log_or_new_to_market_international": "Held out: log odds ratio of new-to-market "
    "innovation per international partner type",
}
SHARES = ("regional_share", "international_share", "product_share")
PROGRAMME_LABELS = {
    Programme.PIPELINE: "One more kind of international partner",
    Programme.CLUSTER: "One more kind of regional partner",
}
GROUP_LABELS = {
    "treated": "treated firms",
    "partners": "their partners",
    "all": "all firms",
}
RULES_LABELS = {
    "default": "Default: pipelines always exchange, the world learns freely",
    "symmetric": "Symmetric: pipelines and the world under the cities' barter rule",
}
TARGETING_LABELS = {"random": "at random", "smallest": "smallest firms",
                    "no_pipeline": "firms without a pipeline"}  # fmt: skip


def _bounds(low: float | None, high: float | None) -> list | None:
    if low is None and high is None:
        return None
    return [low, high]


def simulation_view(record: SimulationEvidence) -> dict[str, Any]:
    """The presentation of the simulation record (labels in words, intervals as [low, high])."""
    moments = []
    for moment in record.moments:
        low, high = moment.published_low, moment.published_high
        inside = (low is None or moment.simulated >= low) and (
            high is None or moment.simulated <= high
        )
        moments.append(
            {
                "name": moment.name,
                "label": MOMENT_LABELS.get(moment.name, moment.name),
                "share": moment.name in SHARES,
                "published": moment.published,
                "interval": _bounds(low, high),
                "simulated": moment.simulated,
                "error": moment.simulation_error,
                "targeted": moment.targeted,
                "inside": bool(inside),
            }
        )
    policy = []
    for effect in record.policy:
        policy.append(
            {
                "programme": f"{PROGRAMME_LABELS[effect.programme]} for {effect.firms_treated} "
                f"firms ({TARGETING_LABELS.get(effect.targeting, effect.targeting)})",
                "group": GROUP_LABELS.get(effect.group, effect.group),
                "firms": effect.firms,
                "simulated": effect.simulated,
                "simulated_interval": _bounds(effect.simulated_low, effect.simulated_high),
                "regression": effect.regression,
                "regression_interval": _bounds(effect.regression_low, effect.regression_high),
                "replicates": effect.replicates,
            }
        )
    order = list(GROUP_LABELS.values())
    policy.sort(key=lambda row: (row["programme"], order.index(row["group"])))
    return {
        "scenario": record.scenario,
        "seed": record.seed,
        "replicates": record.replicates,
        "steps": record.steps,
        "firms": record.firms,
        "moments": moments,
        "policy": policy,
        "lock_in": [
            {
                "city": cell.city,
                "firms": cell.firms,
                "pipelines": cell.pipelines,
                "innovation": cell.innovation,
                "innovation_se": cell.innovation_se,
                "frontier_gap": cell.frontier_gap,
                "frontier_gap_se": cell.frontier_gap_se,
                "replicates": cell.replicates,
            }
            for cell in record.lock_in
        ],
        "rules": [
            {
                "label": RULES_LABELS.get(rules.rules, rules.rules),
                "odds_ratio": math.exp(rules.log_odds_ratio),
                "log_odds_ratio": rules.log_odds_ratio,
                "std_error": rules.std_error,
                "significant": rules.significant,
                "replicates": rules.replicates,
                "product_share": rules.product_share,
            }
            for rules in record.rules
        ],
        "notes": list(record.notes),
    }
