"""The generator's optional confounders of the spill-over tests (issue 16): a region x industry
cell shock in pipelines and outcomes, and partner choice on latent openness (homophily). Both
are off in the shipped presets, whose draws they leave unchanged."""

import numpy as np
import pytest

from buzzpipe.synth.generate import (
    INTERNATIONAL,
    GeneratingParameters,
    draw_block,
    iter_blocks,
    survey_cell_shocks,
)
from buzzpipe.synth.preset import builtin_names, load_preset

SHOCK = {"confounding.cell_shock_pipeline": 2.0, "confounding.cell_shock_outcome": 2.0}


@pytest.mark.parametrize("name", builtin_names())
def test_the_shipped_presets_have_them_off(name):
    preset = load_preset(name)
    parameters = GeneratingParameters.from_preset(preset)
    assert parameters.homophily == 0.0 and not parameters.cell_shocks_on
    assert survey_cell_shocks(parameters, 5) is None


def test_draws_with_the_confounders_at_zero_are_the_draws_without_them():
    """Turning a confounder on and back to 0 changes nothing: the same arrays, bit for bit."""
    plain = next(iter_blocks(load_preset("norway2010"), 11))
    zero = load_preset(
        "norway2010",
        {
            "links.homophily": 0.0,
            "confounding.cell_shock_pipeline": 0.0,
            "confounding.cell_shock_outcome": 0.0,
        },
    )
    same = next(iter_blocks(zero, 11))
    for field in ("breadth", "link_partner_id", "pipeline_exposure"):
        assert np.array_equal(getattr(plain, field), getattr(same, field))
    for outcome, values in plain.outcomes.items():
        assert np.array_equal(values, same.outcomes[outcome])


def _cell_means(block, values):
    cells = block.region * 100 + block.industry
    labels = np.unique(cells)
    return labels, np.array([values[cells == label].mean() for label in labels])


def test_the_cell_shock_moves_pipelines_and_outcomes_of_its_cell_together():
    """With a strong shock the cells' pipeline shares and product shares follow the drawn shock
    (the survey's one draw per cell), and without it they do not."""
    preset = load_preset("norway2010", {**SHOCK, "survey.firms": 6000})
    parameters = GeneratingParameters.from_preset(preset)
    shocks = survey_cell_shocks(parameters, 3)
    assert shocks.shape == (len(parameters.regions), len(parameters.industries))
    block = next(iter_blocks(preset, 3))
    labels, pipelines = _cell_means(block, (block.breadth[:, INTERNATIONAL] > 0).astype(float))
    _, product = _cell_means(block, block.outcomes["product"].astype(float))
    shock = shocks[labels // 100, labels % 100]
    assert np.corrcoef(shock, pipelines)[0, 1] > 0.8
    assert np.corrcoef(shock, product)[0, 1] > 0.8
    plain = next(iter_blocks(load_preset("norway2010", {"survey.firms": 6000}), 3))
    _, plain_pipelines = _cell_means(plain, (plain.breadth[:, INTERNATIONAL] > 0).astype(float))
    assert abs(np.corrcoef(shock, plain_pipelines)[0, 1]) < 0.5


def test_every_block_of_a_survey_shares_its_cell_shock():
    """Blocks draw from their own streams, the shock from the survey's: two blocks of one
    survey move with the same shock."""
    preset = load_preset("norway2010", {"confounding.cell_shock_pipeline": 3.0})
    blocks = list(iter_blocks(preset, 8, firms=8000, block_firms=4000))
    shocks = survey_cell_shocks(GeneratingParameters.from_preset(preset), 8, len(blocks))
    for block in blocks:
        labels, pipelines = _cell_means(block, (block.breadth[:, INTERNATIONAL] > 0) * 1.0)
        assert np.corrcoef(shocks[labels // 100, labels % 100], pipelines)[0, 1] > 0.8


def test_draw_block_refuses_a_preset_with_the_shock_on_without_it():
    parameters = GeneratingParameters.from_preset(load_preset("norway2010", SHOCK))
    with pytest.raises(ValueError, match="survey_cell_shocks"):
        draw_block(parameters, 100, np.random.default_rng(1))


@pytest.mark.parametrize(("homophily", "low", "high"), [(0.0, -0.1, 0.1), (0.5, 0.4, 0.6)])
def test_homophily_makes_partners_capabilities_correlate_about_h(homophily, low, high):
    """Surveyed regional partners' latent openness correlates with the firm's about h."""
    preset = load_preset("norway2010", {"links.homophily": homophily, "survey.firms": 4000})
    block = next(iter_blocks(preset, 21))
    surveyed = block.link_in_survey
    firm = block.link_firm[surveyed]
    partner = block.link_partner_id[surveyed] - 1  # ids are 1 + the row
    assert not np.any(firm == partner)
    assert np.all(block.region[firm] == block.region[partner])
    correlation = np.corrcoef(block.openness_latent[firm], block.openness_latent[partner])[0, 1]
    assert low < correlation < high


def test_full_homophily_picks_the_nearest_capability():
    preset = load_preset("norway2010", {"links.homophily": 1.0})
    block = next(iter_blocks(preset, 4))
    surveyed = block.link_in_survey
    firm = block.link_firm[surveyed]
    partner = block.link_partner_id[surveyed] - 1
    capability = block.openness_latent
    for i, j in zip(firm[:50], partner[:50], strict=True):
        others = np.flatnonzero(
            (block.region == block.region[i]) & (np.arange(len(capability)) != i)
        )
        nearest = others[np.argmin(np.abs(capability[others] - capability[i]))]
        assert abs(capability[j] - capability[i]) == pytest.approx(
            abs(capability[nearest] - capability[i])
        )
