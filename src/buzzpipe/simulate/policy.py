"""Policy experiments: the study's programmes run as interventions in the simulated economy.

One economy runs a burn-in of at least five survey windows; its state is saved
(``Simulation.snapshot``) and every arm goes on from that same state, each with its own network:
the control keeps the standing ties, the "international" arm gives K targeted firms one new
pipeline with a partner type they do not yet report abroad, the "local" arm one new regional
partner tie with a type they do not yet report in their city. Ties are keyed (``streams``), so the
ties the arms have in common draw the same numbers in every step, the landscape's shocks come from
its own generator restored from the snapshot, and an arm differs from the control only by the new
ties and what they set off. Effects are arm minus control per replicate (paired), for the treated
firms, their partners (regional and national partner ties of the standing network) and whole
cities, averaged over the windows after the intervention.

Pipelines here are given at random or by the stated targeting, never to better firms: unlike the
study's regression counterfactuals, these effects contain no selection of better firms into
pipelines.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from buzzpipe.simulate import streams
from buzzpipe.simulate.kernel import Simulation, Snapshot
from buzzpipe.simulate.network import MIRROR_TYPE, Cities, Edges, Network
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.run import replicate_seeds
from buzzpipe.survey.schema import GROUP_PARTNER_TYPE, PARTNER_TYPES

ARMS = ("control", "international", "local")
TARGETING = ("random", "smallest", "no_pipeline")
MIN_BURN_IN_WINDOWS = 5
POLICY_RANK = 1 << 20  # the new tie's rank: above any standing tie's rank, so its key is new
TARGET_PURPOSE = 101  # keyed purposes of the policy's own numbers (beyond streams' constants)
TYPE_PURPOSE = 102
PARTNER_PURPOSE = 103
GROUP = PARTNER_TYPES.index(GROUP_PARTNER_TYPE)


def choose_treated(network: Network, k: int, targeting: str, key: np.uint64) -> np.ndarray:
    """K firms: at random, the K smallest by employees, or at random among firms without a
    pipeline (every choice keyed by the run key, the same in every arm)."""
    if targeting not in TARGETING:
        raise ValueError(f"targeting must be one of {TARGETING}, got {targeting!r}")
    n_firms = network.cities.n_firms
    firm = np.arange(n_firms)
    order = streams.uniform(key, TARGET_PURPOSE, firm)
    if targeting == "smallest":
        pool = np.lexsort((order, network.traits.employees))
    else:
        pool = firm[np.argsort(order, kind="stable")]
        if targeting == "no_pipeline":
            has = np.zeros(n_firms, dtype=bool)
            has[network.pipelines.source] = True
            pool = pool[~has[pool]]
    if k > len(pool):
        raise ValueError(f"{k} firms to treat, only {len(pool)} eligible ({targeting})")
    return np.sort(pool[:k])


def _new_types(reported: np.ndarray, firms: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each firm, a partner type (never its own group) it does not report yet, at random
    among those; a firm that reports every type gets one at random (breadth cannot grow)."""
    types = []
    candidates_all = [t for t in range(len(PARTNER_TYPES)) if t != GROUP]
    for firm, draw in zip(firms, u, strict=True):
        missing = [t for t in candidates_all if not reported[firm, t]] or candidates_all
        types.append(missing[int(draw * len(missing))])
    return np.asarray(types, dtype=np.int64)


def _reported(n_firms: int, edges: Edges, both_sides: bool) -> np.ndarray:
    reported = np.zeros((n_firms, len(PARTNER_TYPES)), dtype=bool)
    firms = np.concatenate([edges.source, edges.target]) if both_sides else edges.source
    types = (
        np.concatenate([edges.source_type, edges.target_type]) if both_sides else edges.source_type
    )
    keep = (types >= 0) & (firms < n_firms)
    reported[firms[keep], types[keep]] = True
    return reported


def _append(edges: Edges, source, target, source_type, target_type, key) -> Edges:
    return Edges(
        np.concatenate([edges.source, source]), np.concatenate([edges.target, target]),
        np.concatenate([edges.source_type, source_type]),
        np.concatenate([edges.target_type, target_type]), np.concatenate([edges.key, key]),
    )  # fmt: skip


def treated_network(network: Network, treated: np.ndarray, arm: str, key: np.uint64) -> Network:
    """The standing network plus one new tie per treated firm (``arm``: international or
    local); the control arm is the standing network itself."""
    if arm == "control":
        return network
    cities, n_firms = network.cities, network.cities.n_firms
    rank = np.full(len(treated), POLICY_RANK, dtype=np.int64)
    if arm == "international":
        reported = _reported(n_firms, network.pipelines, both_sides=False)
        types = _new_types(reported, treated, streams.uniform(key, TYPE_PURPOSE, 1, treated))
        foreign = n_firms + np.floor(
            streams.uniform(key, PARTNER_PURPOSE, 1, treated) * network.world_size
        ).astype(np.int64)
        tie_key = streams.tie_key(streams.TIE_PIPELINE, treated, rank)
        pipelines = _append(network.pipelines, treated, foreign, types,
                            np.full_like(types, -1), tie_key)  # fmt: skip
        return dataclasses.replace(network, pipelines=pipelines)
    if arm == "local":
        reported = _reported(n_firms, network.regional, both_sides=True)
        types = _new_types(reported, treated, streams.uniform(key, TYPE_PURPOSE, 2, treated))
        city = cities.city_of_firm[treated]
        start, size = cities.start[:-1][city], cities.sizes[city]
        if np.any(size < 2):
            raise ValueError("a firm alone in its city cannot get a regional partner")
        step = np.floor(streams.uniform(key, PARTNER_PURPOSE, 2, treated) * (size - 1)) + 1
        partner = start + (treated - start + step.astype(np.int64)) % size
        tie_key = streams.tie_key(streams.TIE_REGIONAL, treated, rank)
        regional = _append(network.regional, treated, partner, types, MIRROR_TYPE[types], tie_key)
        return dataclasses.replace(network, regional=regional)
    raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")


def partners_of(network: Network, firms: np.ndarray) -> np.ndarray:
    """The standing regional and national partners of ``firms``, themselves left out."""
    is_treated = np.zeros(network.cities.n_firms, dtype=bool)
    is_treated[firms] = True
    partners = []
    for edges in (network.regional, network.national):
        partners += [edges.target[is_treated[edges.source]], edges.source[is_treated[edges.target]]]
    found = np.unique(np.concatenate(partners)) if partners else np.zeros(0, dtype=np.int64)
    return found[~is_treated[found]]


def burn_in(
    parameters: ModelParameters, cities: Cities, seed, windows: int
) -> tuple[Simulation, Snapshot]:
    """Run ``windows`` survey windows (at least five) and save the state."""
    if windows < MIN_BURN_IN_WINDOWS:
        raise ValueError(f"burn-in of {windows} windows: at least {MIN_BURN_IN_WINDOWS} needed")
    model = Simulation(parameters, cities, seed)
    for step in range(1, windows * parameters.survey_window + 1):
        model.step()
        if step % parameters.survey_window == 0:
            model.close_window()
    return model, model.snapshot()


def branch(
    parameters: ModelParameters, cities: Cities, seed, network: Network, snapshot: Snapshot
) -> Simulation:
    """An arm: the economy with ``network``, going on from the burn-in's saved state."""
    model = Simulation(parameters, cities, seed, network)
    model.restore(snapshot)
    return model


def run_policy_replicate(
    parameters: ModelParameters,
    cities: Cities | Mapping[str, int],
    seed,
    *,
    treated_firms: int,
    targeting: str = "random",
    burn_in_windows: int = MIN_BURN_IN_WINDOWS,
    follow_windows: int = 2,
    arms: Sequence[str] = ARMS,
) -> pd.DataFrame:
    """One replicate: per arm, product innovators per window after the intervention, for the
    treated firms, their partners, every firm, and every city."""
    cities = cities if isinstance(cities, Cities) else Cities.from_mapping(cities)
    model, snapshot = burn_in(parameters, cities, seed, burn_in_windows)
    standing, key = model.network, model.key
    treated = choose_treated(standing, treated_firms, targeting, key)
    partners = partners_of(standing, treated)
    groups = {"treated firms": treated, "their partners": partners,
              "all firms": np.arange(cities.n_firms)}  # fmt: skip
    for index, name in enumerate(cities.names):
        groups[f"city {name}"] = np.flatnonzero(cities.city_of_firm == index)
    rows = []
    for arm in arms:
        network = treated_network(standing, treated, arm, key)
        arm_model = branch(parameters, cities, seed, network, snapshot)
        product = np.zeros(cities.n_firms)
        for step in range(1, follow_windows * parameters.survey_window + 1):
            arm_model.step()
            if step % parameters.survey_window == 0:
                product += arm_model.close_window().product
        product /= follow_windows
        for group, members in groups.items():
            rows.append({"arm": arm, "group": group, "firms": len(members),
                         "product_rate": float(product[members].mean()) if len(members)
                         else math.nan})  # fmt: skip
    return pd.DataFrame(rows)


def _policy_replicate(parameters, cities, options, item) -> pd.DataFrame:
    index, child = item
    frame = run_policy_replicate(parameters, cities, child, **options)
    frame.insert(0, "replicate", index)
    return frame


def policy_experiment(
    parameters: ModelParameters,
    cities: Cities | Mapping[str, int],
    seed: int,
    replicates: int,
    processes: int = 1,
    **options,
) -> pd.DataFrame:
    """``run_policy_replicate`` for ``replicates`` seeds from ``SeedSequence(seed).spawn``, over
    ``processes`` processes (the same table whatever their number)."""
    from functools import partial

    from buzzpipe.simulate.parallel import map_replicates

    seeds = list(enumerate(replicate_seeds(seed, replicates)))
    task = partial(_policy_replicate, parameters, cities, options)
    return pd.concat(map_replicates(task, seeds, processes), ignore_index=True)


def paired_effects(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Arm minus control per replicate and group; mean, standard error over replicates and a
    t interval (paired by replicate: the arms share the burn-in and every common draw)."""
    wide = table.pivot_table(index=["replicate", "group"], columns="arm", values="product_rate")
    rows = []
    for arm in [a for a in wide.columns if a != "control"]:
        difference = (wide[arm] - wide["control"]).groupby(level="group", sort=False)
        for group, values in difference:
            n = int(values.count())
            mean = float(values.mean())
            se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se if n > 1 else math.nan
            rows.append({"arm": arm, "group": group, "replicates": n, "effect": mean,
                         "se": se, "low": mean - half, "high": mean + half})  # fmt: skip
    return pd.DataFrame(rows)
