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

from buzzpipe.errors import InputError
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
    """Ties ``source[e] -- target[e]``; the partner types say what each side calls the other."""

    source: np.ndarray  # agent index (the side that named the tie)
    target: np.ndarray  # agent index
    source_type: np.ndarray  # index into PARTNER_TYPES: what source calls target (-1: untyped)
    target_type: np.ndarray  # what target calls source (-1: untyped or not reported)

    @classmethod
    def empty(cls) -> Edges:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)

    def __len__(self) -> int:
        return len(self.source)


@dataclass(frozen=True)
class Network:
    """All standing ties of one simulated economy (buzz contacts are drawn per step)."""

    cities: Cities
    world_size: int
    regional: Edges  # partner ties inside a city, learning both ways
    national: Edges  # partner ties between cities of the country, learning both ways
    pipelines: Edges  # firm (source) to foreign agent (target): the firm learns from abroad
    world: Edges  # ties inside the world pool, learning both ways

    @property
    def n_agents(self) -> int:
        return self.cities.n_firms + self.world_size


def _partner_types(rng: np.random.Generator, count: int, weights: tuple[float, ...]) -> np.ndarray:
    if weights:  # checked by ModelParameters.validate: one weight per partner type
        p = np.asarray(weights, dtype=float) / sum(weights)
        return rng.choice(len(PARTNER_TYPES), size=count, p=p)
    return rng.integers(0, len(PARTNER_TYPES), size=count)


def other_in_block(
    rng: np.random.Generator, members: np.ndarray, block_start: np.ndarray, block_size: np.ndarray
) -> np.ndarray:
    """For each agent, a uniformly drawn other agent of its block (itself if alone)."""
    offset = members - block_start
    step = np.floor(rng.random(len(members)) * np.maximum(block_size - 1, 1)).astype(np.int64) + 1
    return np.where(block_size > 1, block_start + (offset + step) % block_size, members)


def build_network(parameters: ModelParameters, cities: Cities, rng: np.random.Generator) -> Network:
    """Draw the standing ties: Poisson numbers of partners, uniform partners, typed sides."""
    n_firms, n_world = cities.n_firms, parameters.world_size
    city = cities.city_of_firm
    start, sizes = cities.start[:-1][city], cities.sizes[city]
    weights = parameters.partner_type_weights

    def typed(source: np.ndarray, target: np.ndarray) -> Edges:
        source_type = _partner_types(rng, len(source), weights)
        return Edges(source, target, source_type, MIRROR_TYPE[source_type])

    # regional partner ties: only in cities of two firms or more
    counts = rng.poisson(parameters.regional_partners, n_firms) * (sizes > 1)
    owner = np.repeat(np.arange(n_firms), counts)
    regional = typed(owner, other_in_block(rng, owner, start[owner], sizes[owner]))

    # national partner ties: a firm in another city (needs two cities or more)
    counts = rng.poisson(parameters.national_partners, n_firms) * (sizes < n_firms)
    owner = np.repeat(np.arange(n_firms), counts)
    partner = other_in_block(
        rng, owner, np.zeros_like(owner), np.full_like(owner, n_firms)
    )  # any other firm; redraw those landing in the owner's own city
    for _ in range(64):
        same = city[partner] == city[owner]
        if not same.any():
            break
        partner[same] = rng.integers(0, n_firms, size=int(same.sum()))
    keep = city[partner] != city[owner]
    national = typed(owner[keep], partner[keep])

    # pipelines: a share of firms, each with 1 + Poisson(mean - 1) foreign partners
    has_pipeline = rng.random(n_firms) < parameters.pipeline_share
    counts = has_pipeline * (1 + rng.poisson(parameters.pipelines_per_firm - 1.0, n_firms))
    owner = np.repeat(np.arange(n_firms), counts)
    foreign = n_firms + rng.integers(0, n_world, size=len(owner))
    source_type = _partner_types(rng, len(owner), weights)
    pipelines = Edges(owner, foreign, source_type, np.full_like(source_type, -1))

    # ties inside the world pool
    counts = rng.poisson(parameters.world_partners, n_world) * (n_world > 1)
    owner = n_firms + np.repeat(np.arange(n_world), counts)
    partner = other_in_block(rng, owner, np.full_like(owner, n_firms), np.full_like(owner, n_world))
    untyped = np.full_like(owner, -1)
    world = Edges(owner, partner, untyped, untyped)
    return Network(cities, n_world, regional, national, pipelines, world)


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
