"""The data-generating process: draws firms, their collaboration, links and outcomes from a preset.

Equations in docs/synthetic_surveys.md (and the package docstring of ``buzzpipe.synth``). Firms are
drawn in blocks of ``BLOCK_FIRMS``; block ``k`` takes its random numbers from
``SeedSequence(seed).spawn(...)[k]`` in a fixed order, so a survey is the same bytes whether it is
built in memory or streamed, and regional partners among surveyed firms are drawn within a block
(a random sample of the survey, so the block size does not change the distribution).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from buzzpipe.survey import schema
from buzzpipe.synth.preset import Preset

BLOCK_FIRMS = 131_072
OUTCOME_NAMES = ("product", "process", "new_to_market")
# Partner types that are firms: a regional one may itself be in the survey.
FIRM_PARTNER_TYPES = ("suppliers", "customers", "competitors", "consultants")
REGIONAL, NATIONAL, INTERNATIONAL = (schema.SCALES.index(s) for s in schema.SCALES)


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class GeneratingParameters:
    """A preset's values as arrays, ready for vectorised draws."""

    regions: list[str]
    region_shares: np.ndarray
    industries: list[str]
    industry_shares: np.ndarray
    country: str
    partner_regions: list[str]  # surveyed city-regions first, then other regions
    min_employees: int
    reference_employees: float
    log_excess_mean: float
    log_excess_sd: float
    industry_size_shift: np.ndarray
    foreign_intercept: float
    foreign_size_slope: float
    full_share_probability: float
    partial_share_range: tuple[float, float]
    openness_noise_sd: float
    openness_cutpoints: np.ndarray
    type_intercept: np.ndarray  # scale x partner type
    scale_shift: np.ndarray  # per scale
    size_slope: np.ndarray
    openness_slope: np.ndarray
    foreign_slope: np.ndarray
    group_foreign_slope: np.ndarray
    firm_scale_sd: np.ndarray
    dont_know_rate: float
    extra_partners_mean: float
    in_survey_share: float
    foreign_countries: list[str]
    foreign_country_shares: np.ndarray
    homophily: float  # partner choice on latent openness (0: uniform within the city-region)
    cell_shock_pipeline: float  # gamma: a region x industry shock in international propensity
    cell_shock_outcome: float  # delta: the same shock in every outcome's log-odds
    # per outcome: coefficients in OUTCOME_TERMS order (without industry/region effects)
    outcome_terms: dict[str, np.ndarray]
    industry_effects: dict[str, np.ndarray]
    region_effects: dict[str, np.ndarray]

    @classmethod
    def from_preset(cls, preset: Preset) -> GeneratingParameters:
        from buzzpipe.synth.preset import OUTCOME_TERMS

        def per_scale(key: str) -> np.ndarray:
            return np.array([preset[key][scale] for scale in schema.SCALES], dtype=float)

        regions = list(preset["survey.regions"])
        other = [r for r in preset["survey.other_regions"] if r not in regions]
        return cls(
            regions=regions,
            region_shares=np.asarray(preset["survey.region_shares"], dtype=float),
            industries=list(preset["survey.industries"]),
            industry_shares=np.asarray(preset["survey.industry_shares"], dtype=float),
            country=preset["survey.country"],
            partner_regions=regions + other,
            min_employees=int(preset["size.min_employees"]),
            reference_employees=float(preset["size.reference_employees"]),
            log_excess_mean=float(preset["size.log_excess_mean"]),
            log_excess_sd=float(preset["size.log_excess_sd"]),
            industry_size_shift=np.asarray(preset["size.industry_shift"], dtype=float),
            foreign_intercept=float(preset["ownership.foreign_intercept"]),
            foreign_size_slope=float(preset["ownership.foreign_size_slope"]),
            full_share_probability=float(preset["ownership.full_share_probability"]),
            partial_share_range=tuple(preset["ownership.partial_share_range"]),
            openness_noise_sd=float(preset["openness.measure_noise_sd"]),
            openness_cutpoints=np.asarray(preset["openness.cutpoints"], dtype=float),
            type_intercept=np.array(
                [
                    [
                        preset[f"collaboration.type_intercept.{scale}"][t]
                        for t in schema.PARTNER_TYPES
                    ]
                    for scale in schema.SCALES
                ],
                dtype=float,
            ),
            scale_shift=per_scale("collaboration.scale_shift"),
            size_slope=per_scale("collaboration.size_slope"),
            openness_slope=per_scale("collaboration.openness_slope"),
            foreign_slope=per_scale("collaboration.foreign_slope"),
            group_foreign_slope=per_scale("collaboration.group_foreign_slope"),
            firm_scale_sd=per_scale("collaboration.firm_scale_sd"),
            dont_know_rate=float(preset["collaboration.dont_know_rate"]),
            extra_partners_mean=float(preset["links.extra_partners_mean"]),
            in_survey_share=float(preset["links.in_survey_share"]),
            foreign_countries=list(preset["links.foreign_countries"]),
            foreign_country_shares=np.asarray(preset["links.foreign_country_shares"], dtype=float),
            homophily=float(preset["links.homophily"]),
            cell_shock_pipeline=float(preset["confounding.cell_shock_pipeline"]),
            cell_shock_outcome=float(preset["confounding.cell_shock_outcome"]),
            outcome_terms={
                o: np.array([preset[f"outcomes.{o}.{t}"] for t in OUTCOME_TERMS], dtype=float)
                for o in OUTCOME_NAMES
            },
            industry_effects={
                o: np.asarray(preset[f"outcomes.{o}.industry_effects"], dtype=float)
                for o in OUTCOME_NAMES
            },
            region_effects={
                o: np.asarray(preset[f"outcomes.{o}.region_effects"], dtype=float)
                for o in OUTCOME_NAMES
            },
        )

    @property
    def cell_shocks_on(self) -> bool:
        """Whether the region x industry cell shock enters anything (off in shipped presets)."""
        return self.cell_shock_pipeline != 0 or self.cell_shock_outcome != 0


def survey_cell_shocks(
    parameters: GeneratingParameters, seed: int, blocks: int = 1
) -> np.ndarray | None:
    """The survey's N(0, 1) shock per region x industry cell (regions x industries), drawn once
    per survey from its own stream (the seed's child after the blocks' children), so every
    block of a survey shares it; ``None`` when the shock is off (nothing drawn)."""
    if not parameters.cell_shocks_on:
        return None
    stream = np.random.SeedSequence(seed).spawn(blocks + 1)[blocks]
    shape = (len(parameters.regions), len(parameters.industries))
    return np.random.default_rng(stream).standard_normal(shape)


@dataclass
class Block:
    """One block of drawn firms as arrays, latent variables included (for calibration)."""

    firm_id: np.ndarray
    region: np.ndarray  # codes into regions
    industry: np.ndarray  # codes into industries
    employees: np.ndarray
    foreign_share: np.ndarray
    openness_latent: np.ndarray
    openness: np.ndarray  # measured 1-5
    collaboration: np.ndarray  # bool, firm x scale x partner type (true answers)
    dont_know: np.ndarray | None  # bool, same shape: answers recorded as missing
    breadth: np.ndarray  # firm x scale, group excluded, from the true answers
    pipeline_exposure: np.ndarray  # 0 where no surveyed regional partner
    pipeline_exposure_known: np.ndarray  # bool: the firm has a surveyed regional partner
    outcomes: dict[str, np.ndarray]  # int8 0/1
    link_firm: np.ndarray  # index of the firm within the block
    link_partner_id: np.ndarray
    link_in_survey: np.ndarray
    link_scale: np.ndarray
    link_partner_type: np.ndarray
    link_partner_region: np.ndarray  # codes into partner_regions, -1 abroad
    link_partner_country: np.ndarray  # 0 home country, 1 + index into foreign_countries


def block_sizes(total_firms: int, block_firms: int = BLOCK_FIRMS) -> list[int]:
    """Sizes of the blocks a survey of ``total_firms`` is drawn in."""
    full, rest = divmod(total_firms, block_firms)
    return [block_firms] * full + ([rest] if rest else [])


def draw_block(
    parameters: GeneratingParameters,
    n: int,
    rng: np.random.Generator,
    *,
    first_id: int = 0,
    first_external_id: int = 1_000_000_000,
    cell_shocks: np.ndarray | None = None,
) -> Block:
    """Draw ``n`` firms with ids ``first_id + 1 ...``; external partners numbered from
    ``first_external_id``. The order of random draws is part of the reproducibility contract.
    ``cell_shocks`` (regions x industries, :func:`survey_cell_shocks`) is required when the
    preset turns the cell shock on."""
    p = parameters
    if p.cell_shocks_on and cell_shocks is None:
        raise ValueError("the preset's cell shock is on: pass survey_cell_shocks(...)")
    n_scales, n_types = len(schema.SCALES), len(schema.PARTNER_TYPES)
    region = rng.choice(len(p.regions), size=n, p=p.region_shares)
    industry = rng.choice(len(p.industries), size=n, p=p.industry_shares)

    log_excess = p.log_excess_mean + p.industry_size_shift[industry]
    log_excess = log_excess + p.log_excess_sd * rng.standard_normal(n)
    employees = p.min_employees + np.floor(np.exp(log_excess)).astype(np.int64)
    size = np.log(employees / p.reference_employees)

    owned = rng.random(n) < _logistic(p.foreign_intercept + p.foreign_size_slope * size)
    full = rng.random(n) < p.full_share_probability
    low, high = p.partial_share_range
    partial = np.round(low + (high - low) * rng.random(n), 2)
    foreign_share = np.where(owned, np.where(full, 1.0, partial), 0.0)

    openness_latent = rng.standard_normal(n)
    noisy = openness_latent + p.openness_noise_sd * rng.standard_normal(n)
    openness = (1 + (noisy[:, None] > p.openness_cutpoints).sum(axis=1)).astype(np.int8)

    scale_index = (
        p.scale_shift
        + np.outer(size, p.size_slope)
        + np.outer(openness_latent, p.openness_slope)
        + np.outer(foreign_share, p.foreign_slope)
        + p.firm_scale_sd * rng.standard_normal((n, n_scales))
    )
    cell_shock = np.zeros(n) if cell_shocks is None else cell_shocks[region, industry]
    if cell_shocks is not None:  # the cell's shock in its firms' pipeline propensity
        scale_index[:, INTERNATIONAL] += p.cell_shock_pipeline * cell_shock
    group = np.array([t == schema.GROUP_PARTNER_TYPE for t in schema.PARTNER_TYPES])
    logits = scale_index[:, :, None] + p.type_intercept
    logits[:, :, group] += (np.outer(foreign_share, p.group_foreign_slope))[:, :, None]
    collaboration = rng.random((n, n_scales, n_types)) < _logistic(logits)
    dont_know = None
    if p.dont_know_rate > 0:
        dont_know = rng.random((n, n_scales, n_types)) < p.dont_know_rate
    breadth = collaboration[:, :, ~group].sum(axis=2)

    links = _draw_links(
        p, collaboration, region, breadth, rng, first_id, first_external_id, openness_latent
    )
    (link_firm, partner_id, in_survey, scale, partner_type, partner_region, partner_country) = links
    pipeline_exposure, exposure_known = _pipeline_exposure(
        n, link_firm, partner_id, in_survey, breadth, first_id
    )

    covariates = np.column_stack(
        [
            np.ones(n),
            breadth[:, REGIONAL],
            breadth[:, NATIONAL],
            breadth[:, INTERNATIONAL],
            breadth[:, REGIONAL] * breadth[:, INTERNATIONAL],
            pipeline_exposure,
            np.log(employees),
            foreign_share,
            openness_latent,
        ]
    )
    outcome_draws = rng.random((n, len(OUTCOME_NAMES)))
    outcomes: dict[str, np.ndarray] = {}
    for column, name in enumerate(OUTCOME_NAMES):
        index = covariates @ p.outcome_terms[name]
        index += p.industry_effects[name][industry] + p.region_effects[name][region]
        index += p.cell_shock_outcome * cell_shock
        outcome = outcome_draws[:, column] < _logistic(index)
        if name == "new_to_market":  # the second rung of the novelty ladder
            outcome &= outcomes["product"].astype(bool)
        outcomes[name] = outcome.astype(np.int8)

    return Block(
        firm_id=first_id + 1 + np.arange(n, dtype=np.int64),
        region=region,
        industry=industry,
        employees=employees,
        foreign_share=foreign_share,
        openness_latent=openness_latent,
        openness=openness,
        collaboration=collaboration,
        dont_know=dont_know,
        breadth=breadth,
        pipeline_exposure=pipeline_exposure,
        pipeline_exposure_known=exposure_known,
        outcomes=outcomes,
        link_firm=link_firm,
        link_partner_id=partner_id,
        link_in_survey=in_survey,
        link_scale=scale,
        link_partner_type=partner_type,
        link_partner_region=partner_region,
        link_partner_country=partner_country,
    )


def _draw_links(
    p: GeneratingParameters,
    collaboration: np.ndarray,
    region: np.ndarray,
    breadth: np.ndarray,
    rng: np.random.Generator,
    first_id: int,
    first_external_id: int,
    capability: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Partners for every (firm, scale, partner type) collaborated with: 1 + Poisson each.
    With ``p.homophily`` > 0 a surveyed regional partner is chosen on ``capability`` (latent
    openness): :func:`_homophilous_partners`, from the same uniforms (no extra draws)."""
    n, n_scales, n_types = collaboration.shape
    cells = np.flatnonzero(collaboration.reshape(n, -1))
    firm, cell = np.divmod(cells, n_scales * n_types)
    scale_of_cell, type_of_cell = np.divmod(cell, n_types)
    counts = 1 + rng.poisson(p.extra_partners_mean, size=cells.size)
    firm = np.repeat(firm, counts)
    scale = np.repeat(scale_of_cell, counts).astype(np.int8)
    partner_type = np.repeat(type_of_cell, counts).astype(np.int8)
    links = firm.size
    uniforms = rng.random((links, 4))

    # Regional firm partners may be other surveyed firms of the same city-region.
    firm_type = np.isin(
        np.arange(n_types), [schema.PARTNER_TYPES.index(t) for t in FIRM_PARTNER_TYPES]
    )
    region_counts = np.bincount(region, minlength=len(p.regions))
    own_region = region[firm]
    in_survey = (
        (scale == REGIONAL)
        & firm_type[partner_type]
        & (uniforms[:, 0] < p.in_survey_share)
        & (region_counts[own_region] >= 2)
    )
    order = np.argsort(region, kind="stable")
    starts = np.concatenate([[0], np.cumsum(region_counts)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - starts[region[order]]
    chosen = np.floor(uniforms[:, 1] * (region_counts[own_region] - 1)).astype(np.int64)
    chosen += chosen >= position[firm]
    partner_local = order[np.minimum(starts[own_region] + chosen, n - 1)]
    if p.homophily > 0 and capability is not None:
        partner_local = _homophilous_partners(
            p.homophily, capability, region, firm, uniforms[:, 1], partner_local, in_survey
        )
    external_rank = np.cumsum(~in_survey) - 1
    partner_id = np.where(
        in_survey, first_id + 1 + partner_local, first_external_id + external_rank
    ).astype(np.int64)

    # Where the partner is: own region, another Norwegian region, or a foreign country.
    other_regions = len(p.partner_regions) - 1
    national_region = np.floor(uniforms[:, 2] * other_regions).astype(np.int64)
    national_region += national_region >= own_region
    partner_region = np.select(
        [scale == REGIONAL, scale == NATIONAL], [own_region, national_region], default=-1
    ).astype(np.int16)
    abroad = np.flatnonzero(scale == INTERNATIONAL)
    country_bounds = np.cumsum(p.foreign_country_shares)
    foreign = 1 + np.searchsorted(
        country_bounds, uniforms[abroad, 3] * country_bounds[-1], side="right"
    )
    partner_country = np.zeros(links, dtype=np.int16)
    partner_country[abroad] = np.minimum(foreign, len(p.foreign_countries))

    # A surveyed partner named twice for the same partner type counts once (external partners
    # have ids of their own, so only surveyed ones can repeat).
    surveyed = np.flatnonzero(in_survey)
    key = (firm[surveyed] * n_types + partner_type[surveyed]) * (n + 1) + partner_local[surveyed]
    _, first = np.unique(key, return_index=True)
    keep = ~in_survey
    keep[surveyed[first]] = True
    return (
        firm[keep],
        partner_id[keep],
        in_survey[keep],
        scale[keep],
        partner_type[keep],
        partner_region[keep],
        partner_country[keep],
    )


def _homophilous_partners(
    homophily: float,
    capability: np.ndarray,
    region: np.ndarray,
    firm: np.ndarray,
    uniform: np.ndarray,
    partner_local: np.ndarray,
    in_survey: np.ndarray,
) -> np.ndarray:
    """Surveyed regional partners chosen on capability: for a link of firm i, the other firm of
    i's city-region whose capability is nearest to h c_i + sqrt(1 - h^2) z, z the normal
    quantile of the link's uniform (so the partners' capabilities correlate about h with the
    firm's; h = 1 picks the nearest capability)."""
    from scipy.special import ndtri

    chosen = partner_local.copy()
    target = homophily * capability[firm] + math.sqrt(1.0 - homophily**2) * ndtri(
        np.clip(uniform, 1e-12, 1 - 1e-12)
    )
    for r in np.unique(region[firm[in_survey]]):
        members = np.flatnonzero(region == r)
        if members.size < 2:
            continue
        order = members[np.argsort(capability[members], kind="stable")]
        values = capability[order]
        links = np.flatnonzero(in_survey & (region[firm] == r))
        # the two firms around the target, then the nearer of them that is not the firm itself
        right = np.clip(np.searchsorted(values, target[links]), 1, order.size - 1)
        candidates = np.stack([right - 2, right - 1, right, right + 1], axis=1)
        candidates = np.clip(candidates, 0, order.size - 1)
        distance = np.abs(values[candidates] - target[links][:, None])
        distance[order[candidates] == firm[links][:, None]] = np.inf
        best = candidates[np.arange(links.size), np.argmin(distance, axis=1)]
        chosen[links] = order[best]
    return chosen


def _pipeline_exposure(
    n: int,
    link_firm: np.ndarray,
    partner_id: np.ndarray,
    in_survey: np.ndarray,
    breadth: np.ndarray,
    first_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Share of a firm's distinct surveyed regional partners that have an international partner,
    and whether the firm has any such partner (the share is 0 where it has none)."""
    pairs = np.unique(
        link_firm[in_survey] * (breadth.shape[0] + 1) + (partner_id[in_survey] - first_id - 1)
    )
    firms, partners = np.divmod(pairs, breadth.shape[0] + 1)
    piped = (breadth[partners, INTERNATIONAL] > 0).astype(float)
    known = np.bincount(firms, minlength=n)
    with_pipeline = np.bincount(firms, weights=piped, minlength=n)
    return np.divide(with_pipeline, known, out=np.zeros(n), where=known > 0), known > 0


def block_frames(block: Block, p: GeneratingParameters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The block as (firms, links) DataFrames in the canonical survey schema."""
    n = block.firm_id.size
    columns: dict[str, object] = {
        schema.FIRM_ID: block.firm_id,
        "region": pd.Categorical.from_codes(block.region, categories=p.regions),
        "industry": pd.Categorical.from_codes(block.industry, categories=p.industries),
        "employees": block.employees,
        "foreign_share": block.foreign_share,
        "openness": block.openness,
    }
    flat = block.collaboration.reshape(n, -1).astype(np.int8)
    missing = (
        block.dont_know.reshape(n, -1) if block.dont_know is not None else np.zeros_like(flat, bool)
    )
    for s, scale in enumerate(schema.SCALES):
        for t, partner_type in enumerate(schema.PARTNER_TYPES):
            cell = s * len(schema.PARTNER_TYPES) + t
            columns[schema.collab_column(scale, partner_type)] = pd.arrays.IntegerArray(
                flat[:, cell].copy(), missing[:, cell].copy()
            )
    for name in OUTCOME_NAMES:
        columns[name] = block.outcomes[name]
    firms = pd.DataFrame(columns)

    countries = [p.country, *p.foreign_countries]
    links = pd.DataFrame(
        {
            "firm_id": block.firm_id[block.link_firm],
            "partner_id": block.link_partner_id,
            "partner_type": pd.Categorical.from_codes(
                block.link_partner_type, categories=list(schema.PARTNER_TYPES)
            ),
            "partner_region": pd.Categorical.from_codes(
                block.link_partner_region, categories=p.partner_regions
            ),
            "partner_country": pd.Categorical.from_codes(
                block.link_partner_country, categories=countries
            ),
        }
    )
    assert tuple(links.columns) == schema.LINK_COLUMNS
    return firms, links


def iter_blocks(
    preset: Preset, seed: int, *, firms: int | None = None, block_firms: int = BLOCK_FIRMS
) -> Iterator[Block]:
    """Draw the survey block by block; ``firms`` defaults to the preset's ``survey.firms``."""
    parameters = GeneratingParameters.from_preset(preset)
    total = int(firms if firms is not None else preset["survey.firms"])
    sizes = block_sizes(total, block_firms)
    streams = np.random.SeedSequence(seed).spawn(len(sizes))
    shocks = survey_cell_shocks(parameters, seed, len(sizes))
    first_id = 0
    # External partners are numbered after all firms, so ids never collide.
    first_external_id = total + 1
    for size, stream in zip(sizes, streams, strict=True):
        block = draw_block(
            parameters,
            size,
            np.random.default_rng(stream),
            first_id=first_id,
            first_external_id=first_external_id,
            cell_shocks=shocks,
        )
        first_id += size
        first_external_id += int((~block.link_in_survey).sum())
        yield block


def edge_list_firms(firms: pd.DataFrame, country: str) -> pd.DataFrame:
    """The firms file of an edge-list survey: collaboration left to the links, own country added
    (the survey classifies links against it)."""
    kept = firms[[c for c in firms.columns if schema.parse_collab_column(c) is None]]
    position = kept.columns.get_loc("region") + 1
    kept = kept.copy()
    kept.insert(position, schema.COUNTRY, pd.Categorical([country] * len(kept)))
    return kept


def generate(
    preset: Preset, seed: int, *, firms: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw a synthetic survey: (firms, links) DataFrames in the canonical schema."""
    parameters = GeneratingParameters.from_preset(preset)
    frames = [block_frames(block, parameters) for block in iter_blocks(preset, seed, firms=firms)]
    if len(frames) == 1:
        return frames[0]
    firms_frame = pd.concat([f for f, _ in frames], ignore_index=True)
    links_frame = pd.concat([links for _, links in frames], ignore_index=True)
    return firms_frame, links_frame
