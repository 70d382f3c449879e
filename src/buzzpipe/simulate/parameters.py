"""Parameters of the knowledge-diffusion model, with their defaults and checks.

Each field is one mechanism's knob; docs/simulation.md writes the model down and says where a
default comes from (the literature, the Norwegian survey, or an assumption).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from buzzpipe.errors import InputError
from buzzpipe.simulate.landscape import MAX_K, MAX_LOCI
from buzzpipe.survey.schema import PARTNER_TYPES

WORLD_NOVELTY = ("evolving", "none")
EXCHANGE_RULES = ("always", "barter")  # a source shares always, or only by barter or openness
MARKET_REFERENCES = ("national", "world")  # whose best product new-to-market is judged against


@dataclass(frozen=True)
class ModelParameters:
    """All knobs of one simulated economy (cities, world pool, ties, learning, landscape)."""

    n_loci: int = 20  # N: bits of a technology
    k: int = 5  # K: epistatic neighbours of each locus
    turbulence_interval: int = 5  # tau: steps between landscape shocks (0 = static landscape)
    turbulence_share: float = 0.2  # phi: share of loci whose tables are redrawn at a shock
    world_size: int = 400  # foreign agents in the world pool
    world_novelty: str = "evolving"  # "none": a pipeline hands back the learner's own knowledge
    regional_partners: float = 1.0  # mean partner ties a firm names inside its city
    national_partners: float = 0.1  # mean partner ties a firm names in other cities
    buzz_contacts: int = 1  # random face-to-face contacts per firm and step within its city
    pipeline_share: float = 0.45  # share of firms with at least one pipeline abroad
    pipelines_per_firm: float = 2.0  # mean pipelines of a pipeline firm (at least one)
    world_partners: float = 3.0  # mean ties a foreign agent names inside the world pool
    tie_activity: float = 0.25  # chance that a firm's partner tie is used in a step
    pipeline_activity: float = 0.25  # chance that a pipeline is used in a step
    world_tie_activity: float = 0.25  # the same for ties inside the world pool
    copy_share: float = 0.8  # chance that a bit of the crossover mask takes the source's bit
    absorption_exponent: float = 1.0  # absorb with chance (1 - distance/N) ** exponent
    omega: float = 0.0  # openness: chance a source shares locally without gaining itself
    explore_rate: float = 0.05  # chance a firm tries one random bit flip in a step
    world_explore_rate: float = 0.3  # the same for foreign agents
    innovation_threshold: float = 0.04  # fitness gain in a survey window that counts as news
    survey_window: int = 12  # steps of a survey's reference period
    product_loci_share: float = 0.5  # the first share of loci are product, the rest process
    partner_type_weights: tuple[float, ...] = ()  # weights over PARTNER_TYPES (empty = equal)
    # the asymmetries between local ties, pipelines and the world pool, as explicit rules
    pipeline_exchange: str = "always"  # "barter": a foreign source shares under the local rule
    world_exchange: str = "always"  # "barter": ties inside the world pool follow the local rule
    # firms: capability, size and ownership (drawn per firm; see docs/simulation.md)
    pipeline_selection: float = 0.0  # correlation of capability with the pipeline propensity
    capability_absorption: float = 0.0  # capable firms absorb more: exponent * exp(-this * z)
    gatekeeper_ratio: float = 1.0  # regional partner rate of pipeline firms / that of the others
    size_log_mean: float = 3.0  # employees = 10 + ceil(lognormal(size_log_mean, size_log_sd))
    size_log_sd: float = 1.0
    size_tie_elasticity: float = 0.0  # partner and pipeline rates scale with size ** this
    size_absorption: float = 0.0  # larger firms absorb more: exponent * exp(-this * size z)
    foreign_owned_share: float = 0.15  # share of foreign-owned firms (independent of ties)
    foreign_pipeline_shift: float = 0.0  # foreign ownership raises the pipeline propensity
    new_to_market_reference: str = "national"  # or "world": the best product at the same step
    new_to_market_margin: float = 0.10  # within this of that best product fitness counts

    def validate(self, file: str | None = None) -> ModelParameters:
        """Raise an InputError naming the first parameter out of its range; return self."""
        ranges = {
            "n_loci": (1, MAX_LOCI),
            "turbulence_interval": (0, math.inf),
            "turbulence_share": (0.0, 1.0),
            "world_size": (1, math.inf),
            "regional_partners": (0.0, math.inf),
            "national_partners": (0.0, math.inf),
            "buzz_contacts": (0, 64),
            "pipeline_share": (0.0, 1.0),
            "pipelines_per_firm": (1.0, math.inf),
            "world_partners": (0.0, math.inf),
            "tie_activity": (0.0, 1.0),
            "world_tie_activity": (0.0, 1.0),
            "copy_share": (0.0, 1.0),
            "absorption_exponent": (0.0, math.inf),
            "omega": (0.0, 1.0),
            "explore_rate": (0.0, 1.0),
            "world_explore_rate": (0.0, 1.0),
            "innovation_threshold": (0.0, 1.0),
            "survey_window": (1, math.inf),
            "product_loci_share": (0.0, 1.0),
            "pipeline_activity": (0.0, 1.0),
            "pipeline_selection": (0.0, 0.99),
            "capability_absorption": (0.0, math.inf),
            "gatekeeper_ratio": (0.0, math.inf),
            "size_log_mean": (-math.inf, math.inf),
            "size_log_sd": (0.0, math.inf),
            "size_tie_elasticity": (-math.inf, math.inf),
            "size_absorption": (-math.inf, math.inf),
            "foreign_owned_share": (0.0, 1.0),
            "foreign_pipeline_shift": (-math.inf, math.inf),
            "new_to_market_margin": (0.0, 1.0),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    "parameter is not a number", file=file, column=name, value=value,
                    expected="a number",
                )  # fmt: skip
            if not (low <= value <= high) or math.isnan(value):
                raise InputError(
                    "parameter out of range", file=file, column=name, value=value,
                    expected=f"a value in [{low}, {high}]",
                )  # fmt: skip
        if not 0 <= self.k <= min(self.n_loci - 1, MAX_K):
            raise InputError(
                "parameter out of range", file=file, column="k", value=self.k,
                expected=f"an integer in [0, min(n_loci - 1, {MAX_K})]",
            )  # fmt: skip
        for name, allowed in (
            ("world_novelty", WORLD_NOVELTY),
            ("pipeline_exchange", EXCHANGE_RULES),
            ("world_exchange", EXCHANGE_RULES),
            ("new_to_market_reference", MARKET_REFERENCES),
        ):
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"unknown {name}", file=file, column=name, value=getattr(self, name),
                    expected=" or ".join(map(repr, allowed)),
                )  # fmt: skip
        weights = self.partner_type_weights
        if weights and len(weights) != len(PARTNER_TYPES):
            raise InputError(
                "one weight per partner type is needed", file=file,
                column="partner_type_weights", value=list(weights),
                expected=f"{len(PARTNER_TYPES)} weights for " + ", ".join(PARTNER_TYPES),
            )  # fmt: skip
        if weights and (any(w < 0 for w in weights) or sum(weights) <= 0):
            raise InputError(
                "partner type weights must be non-negative with a positive sum",
                file=file, column="partner_type_weights", value=list(weights),
            )  # fmt: skip
        return self

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, object], file: str | None = None
    ) -> ModelParameters:
        """Parameters from a TOML table: unknown keys and wrong types are input errors."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for key, value in mapping.items():
            if key not in fields:
                raise InputError(
                    "unknown model parameter", file=file, column=key,
                    expected="one of " + ", ".join(fields),
                )  # fmt: skip
            default = fields[key].default
            if isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InputError(
                        "parameter must be an integer", file=file, column=key, value=value
                    )
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InputError(
                        "parameter must be a number", file=file, column=key, value=value
                    )
                value = float(value)
            elif isinstance(default, tuple):
                if not isinstance(value, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value
                ):
                    raise InputError(
                        "parameter must be a list of numbers", file=file, column=key, value=value
                    )
                value = tuple(float(v) for v in value)
            elif isinstance(default, str) and not isinstance(value, str):
                raise InputError("parameter must be a string", file=file, column=key, value=value)
            values[key] = value
        return cls(**values).validate(file)

    def replace(self, **changes: object) -> ModelParameters:
        """A copy with some fields changed, validated."""
        return dataclasses.replace(self, **changes).validate()

    def symmetric(self) -> ModelParameters:
        """The referee's placebo: pipelines and the world pool under the cities' rules.

        Pipelines share only by barter or openness, like local ties, and are used as often as
        partner ties; foreign agents exchange by the same rule, explore and use their ties as
        often as firms, and name as many partners as a firm does regionally. Only the diversity
        of the world pool and its distance from the cities then differ from a city's.
        """
        return self.replace(
            pipeline_exchange="barter", world_exchange="barter",
            pipeline_activity=self.tie_activity, world_tie_activity=self.tie_activity,
            world_explore_rate=self.explore_rate, world_partners=self.regional_partners,
        )  # fmt: skip
