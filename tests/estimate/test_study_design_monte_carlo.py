"""The few-clusters Monte Carlo in the study's design: its batched fits against plain ones."""

import math

import numpy as np
import pytest
import statsmodels.api as sm

from buzzpipe.estimate import study_design_monte_carlo as mc
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap


@pytest.mark.parametrize("n_regions", [5, 30])
def test_design_keeps_the_survey_regions_and_their_inequality(n_regions):
    design = mc.build_design(n_regions)
    sizes = np.bincount(design.region)
    assert design.firms == 1604 and len(sizes) == n_regions
    parts = n_regions // 5
    regional = sizes.reshape(5, parts).sum(axis=1)
    assert regional.tolist() == [874, 285, 190, 181, 74]
    assert np.ptp(sizes.reshape(5, parts), axis=1).max() <= 1  # near-equal parts
    assert design.n_cells == 6 * n_regions  # every region has firms of every industry
    assert design.dummies.shape == (1604, n_regions - 1 + 5)
    # each cell's row of the cell-level design is its firms' row
    rows = np.column_stack([np.ones(1604), design.dummies])
    np.testing.assert_array_equal(design.cell_design[design.cell], rows)


@pytest.mark.parametrize("n_regions", [5, 30])
def test_cell_level_design_equals_the_dense_one(n_regions):
    design = mc.build_design(n_regions)
    rng = np.random.default_rng(0)
    samples = [mc.simulate(rng, design, "d", 0.2) for _ in range(3)]
    x, z, y = (np.stack([s[i] for s in samples]) for i in range(3))
    dense = np.stack([x, z], axis=2)
    cells = mc.CellBatch(dense, design.cell_design, design.cell)
    sparse = mc.CellBatch(dense, design.cell_design, design.cell, sparse=True)
    X = np.concatenate(
        [dense, np.broadcast_to(design.cell_design[design.cell], (3, 1604, n_regions + 5))], axis=2
    )
    full = mc.DenseBatch(X)
    weights = rng.uniform(size=(3, 1604))
    for batch in (cells, sparse):
        np.testing.assert_allclose(batch.hessian(weights), full.hessian(weights), rtol=1e-11)
        np.testing.assert_allclose(batch.gradient(weights), full.gradient(weights), rtol=1e-11)
    params, converged = mc.batch_logit(cells, y, np.zeros_like(y))
    assert converged.all()
    for r in range(3):
        reference = sm.Logit(y[r], X[r]).fit(disp=0, method="newton", tol=1e-12)
        np.testing.assert_allclose(params[r], reference.params, rtol=1e-8, atol=1e-10)


def plain_decisions(X, y, region, cell, null_value, draws):
    """One replication's four decisions from statsmodels' scores and Hessian and the core
    WildScoreBootstrap (its own restricted fit and statistics)."""
    model = sm.Logit(y, X)
    fit = model.fit(disp=0, method="newton", tol=1e-12)
    bread = np.linalg.inv(-model.hessian(fit.params))
    scores = model.score_obs(fit.params)
    n = len(y)

    def clustered(codes):
        sums = np.array([scores[codes == c].sum(axis=0) for c in np.unique(codes)])
        G = len(sums)
        return G / (G - 1) * (bread @ sums.T @ sums @ bread)[0, 0]

    variances = {
        "firm_robust": n / (n - 1) * (bread @ scores.T @ scores @ bread)[0, 0],
        "region_wald": clustered(region),
        "cell_wald": clustered(cell),
    }
    decisions = {
        name: abs(fit.params[0] - null_value) / math.sqrt(v) > mc.Z_CRITICAL
        for name, v in variances.items()
    }
    bootstrap = WildScoreBootstrap(X, y, region, weight_type="webb", draws=9999)
    if draws is None:
        decisions["region_wild"] = bootstrap.test(0, null_value).p_value <= 0.05
    else:
        restricted = bootstrap.restricted_fit(0, null_value)
        sums = bootstrap.partialled_cluster_scores(0, restricted)
        actual = bootstrap.statistics(sums, np.ones((len(sums), 1)))[0]
        p_value = bootstrap.bootstrap_p_value(actual, bootstrap.statistics(sums, draws))
        decisions["region_wild"] = p_value <= 0.05
    return decisions


@pytest.mark.parametrize(("n_regions", "process", "null_value"), [(5, "c2", 0.0), (30, "b", 0.1)])
def test_run_block_counts_equal_plain_fits_replication_by_replication(
    n_regions, process, null_value
):
    design = mc.build_design(n_regions)
    cell = mc.Cell(process, n_regions, 0.1, null_value, float("nan"))
    count = 6
    mc.run_block(cell, design, 0, count, draws_at_30=199)
    expected = dict.fromkeys(mc.INFERENCES, 0)
    seeds = np.random.SeedSequence([mc.SEED, mc.PROCESSES.index(process), n_regions])
    for child in seeds.spawn(count):
        rng = np.random.default_rng(child)
        x, z, y = mc.simulate(rng, design, process, 0.1)
        draws = None if n_regions == 5 else 2.0 * rng.integers(0, 2, size=(n_regions, 199)) - 1
        X = np.column_stack([x, z, design.cell_design[design.cell]])
        decided = plain_decisions(X, y, design.region, design.cell, null_value, draws)
        for name in mc.INFERENCES:
            expected[name] += bool(decided[name])
    assert cell.replications == count and cell.not_converged == 0
    assert cell.rejections == expected
    record = cell.record()
    assert 1.0 <= record["g_star_region"] <= n_regions
    assert 1.0 <= record["g_star_cell"] <= design.n_cells


def test_effective_clusters_is_g_for_equal_shares_and_less_otherwise():
    assert mc.Cell.effective_clusters([2.0] * 5) == pytest.approx(5.0)
    assert mc.Cell.effective_clusters([10.0, 1.0, 1.0, 1.0, 1.0]) == pytest.approx(196 / 104)


def test_fixed_slopes_are_fixed_and_the_table_reports_replications():
    np.testing.assert_array_equal(mc.fixed_slopes(5), mc.fixed_slopes(5))
    design = mc.build_design(5)
    cells = mc.make_cells((5,), ("a",))
    for cell in cells:
        mc.run_block(cell, design, 0, 4)
    text = mc.table(cells)
    assert "| (a) independent firms | 5 | 0 (0.0000) | 0.0000 | 4 |" in text
    assert "| (a) independent firms | 5 | 0.23 | 0.0000 | 4 |" in text
    assert text.count("\n") == 3  # header, rule, a size and a power row


def test_a_separated_sample_is_flagged_not_raised():
    """A region whose firms all share one outcome has no finite fixed effect: flagged."""
    design = mc.build_design(30)
    rng = np.random.default_rng(5)
    samples = [mc.simulate(rng, design, "a", 0.0) for _ in range(2)]
    x, z, y = (np.stack([s[i] for s in samples]) for i in range(3))
    y[1, design.region == 29] = 0.0
    batch = mc.CellBatch(np.stack([x, z], axis=2), design.cell_design, design.cell)
    params, converged = mc.batch_logit(batch, y, np.zeros_like(y))
    assert converged.tolist() == [True, False]
    reference = sm.Logit(y[0], np.column_stack([x[0], z[0], design.cell_design[design.cell]]))
    np.testing.assert_allclose(params[0], reference.fit(disp=0, tol=1e-12).params, rtol=1e-7)


def test_a_run_is_written_and_read_back(tmp_path):
    output = tmp_path / "run.json"
    cells = mc.run(4, block=2, output=output, regions=(5,), processes=("b",), report=lambda _: 0)
    again = mc.cells_from_json(output)
    assert [c.replications for c in again] == [4, 4]
    assert mc.table(again) == mc.table(cells)
