"""The simulation's evidence as records of ``results.json`` (``replicate --simulate``).

The agent-based model (``buzzpipe.simulate``) run on its calibrated world beside the study:
how well it reproduces the published figures (``moments``), the study's programmes run as
interventions in it beside the regression counterfactuals of the same programmes (``policy``),
small and large cities with and without pipelines (``lock_in``), and the pipeline effect under
the default and the symmetric rules (``rules``). Plain numbers with what they are over (the
replicates), never phrases: the report words them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from buzzpipe.results.vocabulary import Allocation, Programme, Targeting

NON_NEGATIVE = {"check": "non_negative"}
PROBABILITY = {"check": "probability"}


@dataclass
class SimulatedMoment:
    """A published figure against its simulated value (mean over replicates).

    ``published_low``/``published_high`` are the published value's 95% interval at the survey's
    size (None where only a direction is published); ``targeted`` is False for a moment held
    out of the calibration.
    """

    name: str
    published: float | None
    published_low: float | None
    published_high: float | None
    simulated: float
    simulation_error: float = field(metadata=NON_NEGATIVE)
    targeted: bool = True


@dataclass
class PolicyEffect:
    """One programme in the simulation beside the study's regression counterfactual.

    ``group``: ``treated`` (the K firms), ``partners`` (their standing local partners) or
    ``all`` (every firm). The simulated effect is the change in the share of the group's firms
    innovating per survey window (arm minus control, paired by replicate; t interval over the
    replicates). The regression's effect is the study's counterfactual for the same programme:
    extra innovating firms per treated firm (treated), per firm (all), None for partners (a
    regression counterfactual has no effect passed on through partners).
    """

    programme: Programme
    targeting: Targeting
    allocation: Allocation
    firms_treated: int = field(metadata=NON_NEGATIVE)
    group: str
    firms: float = field(metadata=NON_NEGATIVE)
    simulated: float
    simulated_low: float | None
    simulated_high: float | None
    replicates: int = field(metadata=NON_NEGATIVE)
    regression: float | None = None
    regression_low: float | None = None
    regression_high: float | None = None


@dataclass
class LockInCell:
    """Innovation in one city with pipelines off or on (the calibrated share): product
    innovators per survey window over the late half of the run, and the gap to the world
    frontier over its last quarter; means with standard errors over the replicates."""

    city: str
    firms: int = field(metadata=NON_NEGATIVE)
    pipelines: bool
    innovation: float = field(metadata=PROBABILITY)
    innovation_se: float = field(metadata=NON_NEGATIVE)
    frontier_gap: float
    frontier_gap_se: float = field(metadata=NON_NEGATIVE)
    replicates: int = field(metadata=NON_NEGATIVE)


@dataclass
class RulesResult:
    """The international log odds ratio of the study's controls model on the simulated
    surveys under one set of rules: its mean and the standard error of the mean over the
    replicates, and how many replicates found it significant and positive at 5%."""

    rules: str  # "default" or "symmetric"
    log_odds_ratio: float
    std_error: float = field(metadata=NON_NEGATIVE)
    significant: int = field(metadata=NON_NEGATIVE)
    replicates: int = field(metadata=NON_NEGATIVE)
    product_share: float = field(metadata=PROBABILITY)


@dataclass
class SimulationEvidence:
    """The simulation section: the scenario run, and what it showed."""

    scenario: str
    seed: int
    replicates: int = field(metadata=NON_NEGATIVE)
    steps: int = field(metadata=NON_NEGATIVE)
    firms: int = field(metadata=NON_NEGATIVE)
    moments: list[SimulatedMoment] = field(default_factory=list)
    policy: list[PolicyEffect] = field(default_factory=list)
    lock_in: list[LockInCell] = field(default_factory=list)
    rules: list[RulesResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
