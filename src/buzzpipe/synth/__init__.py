r"""Calibrated synthetic surveys: firms, their collaboration and innovation, drawn from a preset.

The data-generating process (full text: docs/synthetic_surveys.md; Λ is the logistic function,
each firm i independent except for links within its block):

    region r_i ~ Categorical(region_shares);  industry k_i ~ Categorical(industry_shares)
    employees_i = min_employees
        + floor(exp(log_excess_mean + industry_shift[k_i] + log_excess_sd z_i))
    size_i = log(employees_i / reference_employees)
    foreign-owned O_i ~ Bernoulli(Λ(foreign_intercept + foreign_size_slope size_i))
    foreign_share_i = O_i (1 if wholly owned [prob. full_share_probability] else U(low, high))
    latent openness u_i ~ N(0, 1); measured openness = 1 + #{cutpoints c: u_i + noise_sd e_i > c}
    collab_{i,s,t} ~ Bernoulli(Λ(type_intercept[s,t] + scale_shift[s] + size_slope[s] size_i
        + openness_slope[s] u_i + foreign_slope[s] F_i + group_foreign_slope[s] F_i [t = group]
        + firm_scale_sd[s] v_{i,s})),  v_{i,s} ~ N(0, 1);  answered "don't know" w.p. dont_know_rate
    breadth_{i,s} = sum over partner types t other than group of collab_{i,s,t}
    links: 1 + Poisson(extra_partners_mean) partners per collaboration; a regional supplier,
        customer, competitor or consultant is a surveyed firm of the same region
        with probability in_survey_share
    pipeline_exposure_i = share of i's distinct surveyed regional partners j with
        breadth_{j,international} > 0 (0 where i has none)
    eta^o_i = intercept + b_R breadth_R + b_N breadth_N + b_I breadth_I + b_RI breadth_R breadth_I
        + b_E pipeline_exposure + b_size log(employees) + b_F foreign_share + b_u u_i
        + industry_effects[k_i] + region_effects[r_i]     (o = product, process, new_to_market)
    product_i ~ Bernoulli(Λ(eta^product)); process_i ~ Bernoulli(Λ(eta^process))
    new_to_market_i = product_i x Bernoulli(Λ(eta^new_to_market))     (the novelty ladder)

Presets (``presets/*.toml``) give every parameter with its published source or the reason it is
assumed; ``calibrate`` finds the values that meet the published targets by simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from buzzpipe import defaults
from buzzpipe.synth.generate import edge_list_firms
from buzzpipe.synth.generate import generate as _generate
from buzzpipe.synth.preset import Preset, builtin_names, load_preset

if TYPE_CHECKING:
    from buzzpipe.survey import Survey

__all__ = ["Preset", "builtin_names", "generate", "load_preset", "synthesize"]


def _as_preset(preset: str | Path | Preset, overrides: dict[str, Any] | None) -> Preset:
    if isinstance(preset, Preset):
        return preset.with_values(overrides) if overrides else preset
    return load_preset(preset, overrides)


def generate(
    preset: str | Path | Preset = defaults.PRESET,
    seed: int = 0,
    *,
    firms: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw a synthetic survey as (firms, links) DataFrames in the canonical survey schema."""
    return _generate(_as_preset(preset, overrides), seed, firms=firms)


def synthesize(
    preset: str | Path | Preset = defaults.PRESET,
    seed: int = 0,
    *,
    firms: int | None = None,
    overrides: dict[str, Any] | None = None,
    edge_list: bool = True,
) -> Survey:
    """Draw a calibrated synthetic survey from a preset and validate it as a :class:`Survey`.

    Parameters
    ----------
    preset : str, pathlib.Path or Preset, default "norway2010"
        A built-in preset (``"norway2010"``, ``"buzz"``, ``"complement"``; ``buzzpipe synth
        --list``) or a preset TOML file.
    seed : int, default 0
        Same preset, seed and number of firms give the same survey.
    firms : int, optional
        The number of firms (default the preset's, 1,604 for norway2010).
    overrides : dict, optional
        Preset values to change by dotted name, e.g.
        ``{"outcomes.product.breadth_regional": 0.1}``.
    edge_list : bool, default True
        True: firms plus their links, from which collaboration and pipeline exposure are
        derived; False: firms with their ``collab_*`` answers (keeping "don't know"), no links.

    Returns
    -------
    Survey
        The drawn survey; its preset's first region and industry are the reference categories.

    Notes
    -----
    Every preset value names the published fact it comes from or says why it is assumed; the
    equations and the calibration are in ``docs/synthetic_surveys.md``.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> survey = bp.synthesize("norway2010", seed=2010, firms=400)
    >>> len(survey), list(survey.firms["region"].cat.categories)
    (400, ['Oslo', 'Bergen', 'Stavanger', 'Trondheim', 'Kristiansand'])
    >>> frame = survey.analysis_frame()
    >>> round(float(frame["product"].mean()), 4)
    0.4625
    """
    from buzzpipe.survey import Survey

    resolved = _as_preset(preset, overrides)
    firms_frame, links_frame = _generate(resolved, seed, firms=firms)
    # The preset's first categories are the references (where a small draw has them at all).
    reference = {
        column: first
        for column, first in (
            ("region", resolved["survey.regions"][0]),
            ("industry", resolved["survey.industries"][0]),
        )
        if (firms_frame[column] == first).any()
    }
    source = f"synthetic survey: preset {resolved.name}, seed {seed}"
    if not edge_list:
        return Survey.from_frame(firms_frame, reference=reference, source=source)
    country = resolved["survey.country"]
    return Survey.from_frame(
        edge_list_firms(firms_frame, country),
        links_frame,
        reference=reference,
        source=source,
        home_country=country,
    )
