"""The simulation as evidence beside the study: what ``replicate --simulate`` adds to results.

On a calibrated scenario (the shipped ``norway`` by default), over ``replicates`` seeds from
``SeedSequence(seed).spawn``:

- the calibration's fit: each published figure against its simulated mean (``calibration``);
- the study's programmes as interventions (``policy``: +1 international or +1 local partner
  type for K firms, branched from a burn-in), paired effects for the treated firms, their
  partners and every firm, beside the study's regression counterfactual of the same programme;
- lock-in: every city's innovation and gap to the world frontier with pipelines off and on;
- the international odds ratio under the default and the symmetric rules (the referee's
  placebo, ``ModelParameters.symmetric``).

Every part shares the replicate seeds (common random numbers). The records are those of
``buzzpipe.results.simulation``; the report words them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from buzzpipe.results.records import ALL_REGIONS, CounterfactualResult
from buzzpipe.results.simulation import (
    LockInCell,
    PolicyEffect,
    RulesResult,
    SimulatedMoment,
    SimulationEvidence,
)
from buzzpipe.results.vocabulary import Allocation, ModelName, Programme, Targeting
from buzzpipe.simulate.calibration import HELD_OUT, TARGETS, simulated_moments
from buzzpipe.simulate.experiments import pipelines_by_city_size, summarise
from buzzpipe.simulate.policy import paired_effects, policy_experiment
from buzzpipe.simulate.run import replicate_seeds
from buzzpipe.simulate.scenario import Scenario

ARM_PROGRAMMES = {"international": Programme.PIPELINE, "local": Programme.CLUSTER}
GROUPS = {"treated firms": "treated", "their partners": "partners", "all firms": "all"}
TARGETINGS = (Targeting.RANDOM, Targeting.NO_PIPELINE, Targeting.SMALLEST)
SIGNIFICANT_Z = 1.959964
NOTES = (
    "The simulation's firms innovate when their adoptions raise their product fitness within a "
    "survey window of 12 steps; the study's outcome is an innovation over the survey's "
    "three-year reference period: the two effects are compared in sign and size, not unit for "
    "unit.",
    "In the calibrated world pipelines go to firms at random (no selection of better firms): "
    "its effects contain no selection. The study's regression counterfactuals are predictions "
    "of the fitted model and carry whatever selection of better firms into pipelines the "
    "survey holds.",
    "A regression counterfactual changes only the treated firms' predictions; the simulation "
    "also shows effects passed on to the treated firms' partners and to every firm.",
)


def _moments(
    frame: pd.DataFrame,
) -> list[SimulatedMoment]:
    n = len(frame)
    rows = []
    for moment in TARGETS:
        values = frame[moment.name]
        low, high = moment.interval
        rows.append(
            SimulatedMoment(
                moment.name, moment.target, low, high, float(values.mean()),
                float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
            )
        )  # fmt: skip
    for name in HELD_OUT:  # the published direction only: above zero
        values = frame[name]
        error = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        rows.append(SimulatedMoment(name, None, 0.0, None, float(values.mean()), error, False))
    return rows


def _rules(name: str, frame: pd.DataFrame) -> RulesResult:
    n = len(frame)
    coefficient = frame["log_or_international"]
    significant = int((coefficient / frame["se_international"] > SIGNIFICANT_Z).sum())
    error = float(coefficient.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return RulesResult(
        name, float(coefficient.mean()), error, significant, n, float(frame["product_share"].mean())
    )


def _regression(
    counterfactuals: Sequence[CounterfactualResult],
    programme: Programme,
    targeting: str,
    k: int,
) -> CounterfactualResult | None:
    for record in counterfactuals:
        if (
            record.model != ModelName.CONTROLS_WITH_INTERACTION  # the primary model's programme
            and record.programme == programme
            and record.targeting == targeting
            and record.allocation == Allocation.TOTAL
            and record.firms_treated == k
        ):
            return record
    return None


def _scaled(record: CounterfactualResult, group: str) -> tuple[float, float | None, float | None]:
    """The regression's extra innovators per treated firm (``treated``) or per firm (``all``)."""
    cell = record.cell(ALL_REGIONS) if len(record.cells) > 1 else record.cells[0]
    per = record.firms_treated if group == "treated" else cell.firms
    interval = cell.extra_innovators_interval
    low = interval.low / per if interval is not None else None
    high = interval.high / per if interval is not None else None
    return cell.extra_innovators / per, low, high


def _policy(
    scenario: Scenario,
    seed: int,
    replicates: int,
    k: int,
    targetings: Sequence[str],
    counterfactuals: Sequence[CounterfactualResult],
    follow_windows: int,
    progress: Callable[[str], None] | None,
    processes: int,
) -> list[PolicyEffect]:
    rows = []
    for targeting in targetings:
        if progress is not None:
            progress(f"policy experiment, {targeting} targeting")
        table = policy_experiment(
            scenario.parameters, scenario.cities, seed, replicates, treated_firms=k,
            targeting=str(targeting), follow_windows=follow_windows, processes=processes,
        )  # fmt: skip
        effects = paired_effects(table)
        firms = table[table["arm"] == "control"].groupby("group")["firms"].mean()
        for _, effect in effects.iterrows():
            if effect["group"] not in GROUPS:
                continue
            group = GROUPS[effect["group"]]
            programme = ARM_PROGRAMMES[effect["arm"]]
            regression = (None, None, None)
            record = _regression(counterfactuals, programme, targeting, k)
            if record is not None and group != "partners":
                regression = _scaled(record, group)
            rows.append(
                PolicyEffect(
                    programme, Targeting(targeting), Allocation.TOTAL, k, group,
                    float(firms[effect["group"]]), float(effect["effect"]),
                    _finite(effect["low"]), _finite(effect["high"]), int(effect["replicates"]),
                    *regression,
                )
            )  # fmt: skip
    return rows


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _lock_in(
    scenario: Scenario,
    seed: int,
    replicates: int,
    progress: Callable[[str], None] | None,
    processes: int,
) -> list[LockInCell]:
    if progress is not None:
        progress("lock-in: pipelines off and on")
    table = pipelines_by_city_size(
        scenario.parameters, scenario.cities, scenario.steps, seed, replicates,
        processes=processes,
    )  # fmt: skip
    summary = summarise(table, "pipelines")
    cells = []
    for _, row in summary.iterrows():
        cells.append(
            LockInCell(
                str(row["city"]), int(row["size"]), row["pipelines"] == "on",
                float(row["innovation_rate"]), _error(row["innovation_rate_se"]),
                float(row["frontier_gap_late"]), _error(row["frontier_gap_late_se"]), replicates,
            )
        )  # fmt: skip
    return cells


def _error(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


def simulation_evidence(
    scenario: Scenario,
    *,
    replicates: int,
    seed: int | None = None,
    counterfactuals: Sequence[CounterfactualResult] = (),
    firms_treated: int = 100,
    targetings: Sequence[str] = TARGETINGS,
    follow_windows: int = 2,
    progress: Callable[[str], None] | None = None,
    processes: int = 1,
) -> SimulationEvidence:
    """The simulation section of a report: calibration fit, policy beside the regression's
    counterfactuals, lock-in, and the default against the symmetric rules (replicates over
    ``processes`` processes: the same numbers whatever their number)."""
    if replicates < 2:
        raise ValueError("the simulation section needs at least 2 replicates (standard errors)")
    seed = scenario.seed if seed is None else seed
    parameters, cities, steps = scenario.parameters, scenario.cities, scenario.steps
    seeds = replicate_seeds(seed, replicates)
    if progress is not None:
        progress("calibration fit: default rules")
    default = simulated_moments(parameters, cities, steps, seeds, processes)
    if progress is not None:
        progress("calibration fit: symmetric rules")
    symmetric = simulated_moments(parameters.symmetric(), cities, steps, seeds, processes)
    policy = _policy(scenario, seed, replicates, firms_treated, targetings, counterfactuals,
                     follow_windows, progress, processes)  # fmt: skip
    return SimulationEvidence(
        scenario=scenario.name, seed=int(seed), replicates=replicates, steps=steps,
        firms=int(cities.n_firms), moments=_moments(default), policy=policy,
        lock_in=_lock_in(scenario, seed, replicates, progress, processes),
        rules=[_rules("default", default), _rules("symmetric", symmetric)], notes=list(NOTES),
    )  # fmt: skip
