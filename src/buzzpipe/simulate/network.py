"""Who can learn from whom: typed partner ties in cities and across them, pipelines, world ties.

Agents are numbered firms first (grouped by city, in the order the cities are given), then the
foreign agents of the world pool. Every tie type is one set of edge arrays, never an object per
firm. Partner ties carry a partner type on each side, so a simulated firm reports breadth per
scale like a surveyed one; buzz contacts are drawn afresh each step by the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import poisson

from buzzpipe.errors import InputError
from buzzpipe.simulate import streams
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.survey.schema import PARTNER_TYPES

# The partner's type as seen from the other side of a tie: my supplier has me as a customer.
MIRROR_TYPE = np.array(
    [PARTNER_TYPES.index({"suppliers": "customers", "customers": "suppliers"}.get(t, t))
     for t in PARTNER_TYPES]
)  # fmt: skip


@dataclass(frozen=True)
class Cities:
    """City names and sizes; firms of city c are agents ``start[c]:start[c + 1]``."""

    names: tuple[str, ...]
    sizes: np.ndarray  # (C,) int

    @classmethod
    def from_mapping(cls, sizes: Mapping[str, int], file: str | None = None) -> Cities:
        """Cities from a name -> number of firms mapping (each at least one firm)."""
        if not sizes:
            raise InputError("no cities given", file=file, column="cities",
                             expected="at least one city with its number of firms")  # fmt: skip
        for name, size in sizes.items():
            if name == "world":
                raise InputError("'world' names the world pool; call the city otherwise",
                                 file=file, column=f"cities.{name}")  # fmt: skip
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise InputError("city size must be a positive integer", file=file,
                                 column=f"cities.{name}", value=size)  # fmt: skip
        return cls(tuple(sizes), np.array(list(sizes.values()), dtype=np.int64))

    @property
    def start(self) -> np.ndarray:
        """First agent index of each city, with the total number of firms appended."""
        return np.concatenate([[0], np.cumsum(self.sizes)])

    @property
    def n_firms(self) -> int:
        return int(self.sizes.sum())

    @property
    def city_of_firm(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.sizes)), self.sizes)


@dataclass(frozen=True)
class Edges:
    """Ties ``source[e] -- target[e]``; the partner types say what each side calls the other.

    ``key`` names each tie for the random numbers drawn for it (``simulate.streams``): the tie's
    kind, the agent that named it and its rank among that agent's ties, so the same tie in two
    arms of an experiment gets the same numbers.
    """

    source: np.ndarray  # agent index (the side that named the tie)
    target: np.ndarray  # agent index
    source_type: np.ndarray  # index into PARTNER_TYPES: what source calls target (-1: untyped)
    target_type: np.ndarray  # what target calls source (-1: untyped or not reported)
    key: np.ndarray | None = None  # uint64 per tie; None: keyed by position

    def __post_init__(self) -> None:
        if self.key is None:
            index = np.arange(len(self.source), dtype=np.uint64)
            object.__setattr__(self, "key", streams.tie_key(0, self.source, index))

    @classmethod
    def empty(cls) -> Edges:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)

    def __len__(self) -> int:
        return len(self.source)


@dataclass(frozen=True)
class FirmTraits:
    """What a firm brings besides its knowledge: capability, size and ownership."""

    capability: np.ndarray  # standard normal: selection into pipelines and absorption
    employees: np.ndarray  # int, more than 10
    size_z: np.ndarray  # log employees, standardised over the firms
    foreign_owned: np.ndarray  # 0/1

    @classmethod
    def neutral(cls, n_firms: int) -> FirmTraits:
        zeros = np.zeros(n_firms)
        return cls(zeros, np.full(n_firms, 11, dtype=np.int64), zeros, zeros)


@dataclass(frozen=True)
class Network:
    """All standing ties of one simulated economy (buzz contacts are drawn per step)."""

    cities: Cities
    world_size: int
    regional: Edges  # partner ties inside a city, learning both ways
    national: Edges  # partner ties between cities of the country, learning both ways
    pipelines: Edges  # firm (source) to foreign agent (target): the firm learns from abroad
    world: Edges  # ties inside the world pool, learning both ways
    traits: FirmTraits | None = None  # None: neutral firms (capability 0, equal size)

    def __post_init__(self) -> None:
        if self.traits is None:
            object.__setattr__(self, "traits", FirmTraits.neutral(self.cities.n_firms))

    @property
    def n_agents(self) -> int:
        return self.cities.n_firms + self.world_size


def _partner_types(u: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Partner types from uniforms: equal chances, or by the weights (checked by validate)."""
    if weights:
        cumulative = np.cumsum(np.asarray(weights, dtype=float) / sum(weights))
        return np.minimum(np.searchsorted(cumulative, u, side="right"), len(PARTNER_TYPES) - 1)
    return np.floor(u * len(PARTNER_TYPES)).astype(np.int64)


def poisson_from_uniform(u: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """Poisson counts by inversion of the distribution function (0 where the mean is 0)."""
    mean = np.broadcast_to(np.asarray(mean, dtype=float), np.shape(u))
    counts = np.zeros(np.shape(u), dtype=np.int64)
    positive = mean > 0
    if positive.any():
        counts[positive] = np.maximum(poisson.ppf(u[positive], mean[positive]), 0).astype(np.int64)
    return counts


def other_in_block(
    u: np.ndarray, members: np.ndarray, block_start: np.ndarray, block_size: np.ndarray
) -> np.ndarray:
    """For each agent, a uniformly drawn other agent of its block (itself if alone)."""
    offset = members - block_start
    step = np.floor(u * np.maximum(block_size - 1, 1)).astype(np.int64) + 1
    return np.where(block_size > 1, block_start + (offset + step) % block_size, members)


def _owners(counts: np.ndarray, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each tie's owner (agent index) and its rank among the owner's ties."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(owner)) - np.repeat(starts, counts)
    return owner + first, rank


def firm_traits(parameters: ModelParameters, n_firms: int, key: np.uint64) -> FirmTraits:
    """Capability (standard normal), employees (log-normal) and foreign ownership, per firm."""
    firm = np.arange(n_firms)
    capability = ndtri(np.clip(streams.uniform(key, streams.CAPABILITY, firm), 1e-16, 1 - 1e-16))
    normal = ndtri(np.clip(streams.uniform(key, streams.EMPLOYEES, firm), 1e-16, 1 - 1e-16))
    log_size = parameters.size_log_mean + parameters.size_log_sd * normal
    employees = 10 + np.ceil(np.exp(log_size)).astype(np.int64)
    log_employees = np.log(employees)
    spread = log_employees.std()
    size_z = (log_employees - log_employees.mean()) / spread if spread > 0 else np.zeros(n_firms)
    foreign = streams.uniform(key, streams.FOREIGN_OWNED, firm) < parameters.foreign_owned_share
    return FirmTraits(capability, employees, size_z, foreign.astype(np.float64))


def build_network(parameters: ModelParameters, cities: Cities, key: np.uint64) -> Network:
    """Draw the standing ties from the run key; every number is keyed by firm and tie rank.

    Pipelines: a firm has one when a latent propensity ``rho * capability + sqrt(1 - rho**2) *
    e + shift * foreign`` passes the threshold that gives ``pipeline_share`` without selection
    (rho = ``pipeline_selection``). Partner and pipeline rates scale with ``(employees /
    geometric mean) ** size_tie_elasticity``; pipeline firms name regional partners at
    ``gatekeeper_ratio`` times the rate of the others, the overall mean kept.
    """
    n_firms, n_world = cities.n_firms, parameters.world_size
    city = cities.city_of_firm
    start, sizes = cities.start[:-1][city], cities.sizes[city]
    weights = parameters.partner_type_weights
    traits = firm_traits(parameters, n_firms, key)
    firm = np.arange(n_firms)
    size_factor = np.exp(parameters.size_tie_elasticity * parameters.size_log_sd * traits.size_z)
    size_factor /= size_factor.mean() if n_firms else 1.0

    def u(purpose: int, *parts: np.ndarray) -> np.ndarray:
        return streams.uniform(key, purpose, *parts)

    # pipelines first: regional tie rates depend on who has one (gatekeepers)
    rho, share = parameters.pipeline_selection, parameters.pipeline_share
    noise = ndtri(np.clip(u(streams.PIPELINE_HAS, firm), 1e-16, 1 - 1e-16))
    propensity = rho * traits.capability + np.sqrt(1 - rho**2) * noise
    propensity += parameters.foreign_pipeline_shift * traits.foreign_owned
    if share <= 0:
        has_pipeline = np.zeros(n_firms, dtype=bool)
    elif share >= 1:
        has_pipeline = np.ones(n_firms, dtype=bool)
    else:
        has_pipeline = propensity > ndtri(1 - share)
    extra = poisson_from_uniform(
        u(streams.PIPELINE_COUNT, firm), (parameters.pipelines_per_firm - 1.0) * size_factor
    )
    owner, rank = _owners(has_pipeline * (1 + extra))
    foreign = n_firms + np.floor(u(streams.PIPELINE_TARGET, owner, rank) * n_world).astype(np.int64)
    source_type = _partner_types(u(streams.PIPELINE_TYPE, owner, rank), weights)
    pipelines = Edges(
        owner, foreign, source_type, np.full_like(source_type, -1),
        streams.tie_key(streams.TIE_PIPELINE, owner, rank),
    )  # fmt: skip

    def typed(kind: int, type_purpose: int, owner, rank, target) -> Edges:
        source_type = _partner_types(u(type_purpose, owner, rank), weights)
        tie_key = streams.tie_key(kind, owner, rank)
        return Edges(owner, target, source_type, MIRROR_TYPE[source_type], tie_key)

    # regional partner ties: only in cities of two firms or more
    ratio = parameters.gatekeeper_ratio
    gate = np.where(has_pipeline, ratio, 1.0) / (share * ratio + 1.0 - share)
    rate = parameters.regional_partners * size_factor * gate * (sizes > 1)
    owner, rank = _owners(poisson_from_uniform(u(streams.REGIONAL_COUNT, firm), rate))
    partner = other_in_block(
        u(streams.REGIONAL_PARTNER, owner, rank), owner, start[owner], sizes[owner]
    )
    regional = typed(streams.TIE_REGIONAL, streams.REGIONAL_TYPE, owner, rank, partner)

    # national partner ties: a firm of another city, uniformly (needs two cities or more)
    rate = parameters.national_partners * size_factor * (sizes < n_firms)
    owner, rank = _owners(poisson_from_uniform(u(streams.NATIONAL_COUNT, firm), rate))
    outside = n_firms - sizes[owner]
    index = np.floor(u(streams.NATIONAL_PARTNER, owner, rank) * outside).astype(np.int64)
    partner = np.where(index < start[owner], index, index + sizes[owner])
    national = typed(streams.TIE_NATIONAL, streams.NATIONAL_TYPE, owner, rank, partner)

    # ties inside the world pool (foreign agent j is keyed as WORLD_AGENT + j)
    j = np.arange(n_world)
    counts = poisson_from_uniform(
        u(streams.WORLD_COUNT, streams.WORLD_AGENT + j), parameters.world_partners * (n_world > 1)
    )
    owner_j, rank = _owners(counts)
    partner_j = other_in_block(
        u(streams.WORLD_PARTNER, streams.WORLD_AGENT + owner_j, rank),
        owner_j, np.zeros_like(owner_j), np.full_like(owner_j, n_world),
    )  # fmt: skip
    untyped = np.full_like(owner_j, -1)
    world = Edges(
        n_firms + owner_j, n_firms + partner_j, untyped, untyped,
        streams.tie_key(streams.TIE_WORLD, streams.WORLD_AGENT + owner_j, rank),
    )  # fmt: skip
    return Network(cities, n_world, regional, national, pipelines, world, traits)


def complete_regional_network(cities: Cities, world_size: int) -> Network:
    """Every pair of firms in a city tied once (untyped); no other ties. For property tests."""
    sources, targets = [], []
    for first, size in zip(cities.start[:-1], cities.sizes, strict=True):
        a, b = np.triu_indices(int(size), k=1)
        sources.append(first + a)
        targets.append(first + b)
    source = np.concatenate(sources).astype(np.int64)
    target = np.concatenate(targets).astype(np.int64)
    untyped = np.full_like(source, -1)
    return Network(
        cities, world_size, Edges(source, target, untyped, untyped), Edges.empty(),
        Edges.empty(), Edges.empty(),
    )  # fmt: skip
