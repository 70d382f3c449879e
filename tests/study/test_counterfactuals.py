"""Counterfactual arithmetic checked against direct re-prediction over every choice of firms."""

import itertools

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from bands import Claim, at_least, states

from buzzpipe.errors import InputError
from buzzpipe.estimate import fit
from buzzpipe.estimate.batched_newton import newton_batch, replicate_probability
from buzzpipe.results.contract import encode
from buzzpipe.study.counterfactuals import (
    Targeting,
    _cells,
    _cells_many,
    _programme_changes,
    apply_programme,
    cell_indicators,
    counterfactual,
    expected_innovation,
    fill_in_order,
    lemire_counts,
    level_sums,
    replicate_raw,
    stratified_counts,
    treatment_shares,
)
from buzzpipe.study.models import BREADTH_CAP

FORMULA = (
    "product ~ breadth_regional * breadth_international + breadth_national"
    " + C(regime, Treatment('none')) + np.log(employees)"
)
REGIME_LEVELS = ["none", "local_only", "global_only", "both"]
# the same model for the core's fit (the regime is an ordered categorical with "none" first)
FORMULA_CORE = (
    "product ~ breadth_regional * breadth_international + breadth_national"
    " + C(regime) + np.log(employees)"
)


def _hand_regime(regional: int, international: int) -> str:
    if regional > 0 and international > 0:
        return "both"
    if regional > 0:
        return "local_only"
    if international > 0:
        return "global_only"
    return "none"


def _survey(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": rng.choice(["Bergen", "Oslo", "Stavanger"], size=n),
            "employees": rng.integers(11, 500, size=n),
            "breadth_regional": rng.binomial(6, 0.3, size=n),
            "breadth_national": rng.binomial(6, 0.2, size=n),
            "breadth_international": rng.binomial(6, 0.15, size=n),
        }
    )
    frame["breadth_international_with_group"] = frame["breadth_international"] + rng.integers(
        0, 2, size=n
    )
    for scale in ("regional", "national", "international"):
        frame[f"any_{scale}"] = (frame[f"breadth_{scale}"] > 0).astype(int)
    frame["regime"] = pd.Categorical(
        [
            _hand_regime(r, i)
            for r, i in zip(frame.breadth_regional, frame.breadth_international, strict=True)
        ],
        categories=REGIME_LEVELS,
    )
    eta = (
        -0.8
        + 0.05 * frame.breadth_regional
        + 0.25 * frame.breadth_international
        + 0.04 * frame.breadth_regional * frame.breadth_international
        + 0.2 * np.log(frame.employees / 50)
    )
    frame["product"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return frame


@pytest.fixture(scope="module")
def fitted():
    data = _survey(800, 1)
    model = smf.logit(FORMULA, data).fit(disp=0)
    return data, model


def _by_hand(model, frame: pd.DataFrame, chosen, scale: str) -> float:
    """Total predicted innovators when exactly the rows in chosen get one more partner."""
    changed = frame.copy()
    for row in chosen:
        changed.loc[row, f"breadth_{scale}"] += 1
        if f"breadth_{scale}_with_group" in changed:
            changed.loc[row, f"breadth_{scale}_with_group"] += 1
        changed.loc[row, f"any_{scale}"] = 1
        changed.loc[row, "regime"] = _hand_regime(
            changed.loc[row, "breadth_regional"], changed.loc[row, "breadth_international"]
        )
    return float(np.asarray(model.predict(changed)).sum())


def _small(data: pd.DataFrame) -> pd.DataFrame:
    frame = data.iloc[:9].copy().reset_index(drop=True)
    frame.loc[[0, 4], "breadth_international"] = 6  # at the cap: not eligible for programme P
    frame.loc[[1, 5], "breadth_international"] = 0
    frame.loc[[1, 5], "any_international"] = 0
    frame.loc[[2], "breadth_regional"] = 0
    frame["any_regional"] = (frame.breadth_regional > 0).astype(int)
    frame["regime"] = pd.Categorical(
        [
            _hand_regime(r, i)
            for r, i in zip(frame.breadth_regional, frame.breadth_international, strict=True)
        ],
        categories=REGIME_LEVELS,
    )
    return frame


@pytest.mark.parametrize(
    "programme, scale", [("pipeline", "international"), ("cluster", "regional")]
)
def test_random_targeting_equals_the_average_over_every_choice_of_firms(fitted, programme, scale):
    data, model = fitted
    frame = _small(data)
    k = 3
    eligible = [row for row in range(len(frame)) if frame.loc[row, f"breadth_{scale}"] < 6]
    totals = [
        _by_hand(model, frame, chosen, scale) for chosen in itertools.combinations(eligible, k)
    ]
    cells = expected_innovation(model, frame, programme, k, targeting="random")
    region, firms, base_rate, rate, extra = cells[-1]
    assert region == "all" and firms == len(frame)
    assert rate * firms == pytest.approx(np.mean(totals), rel=1e-12)
    assert base_rate * firms == pytest.approx(
        float(np.asarray(model.predict(frame)).sum()), rel=1e-12
    )
    assert extra == pytest.approx(np.mean(totals) - base_rate * firms, rel=1e-10)
    assert extra > 0


def test_no_pipeline_targeting_and_per_region_allocation_by_enumeration(fitted):
    data, model = fitted
    frame = _small(data)
    k = 1
    regions = sorted(frame.region.unique())
    eligible = {
        region: [
            row
            for row in range(len(frame))
            if frame.loc[row, "region"] == region and frame.loc[row, "breadth_international"] == 0
        ]
        for region in regions
    }
    choices = [
        [row for row in pick if row is not None]
        for pick in itertools.product(*[eligible[r] or [None] for r in regions])
    ]
    totals = [_by_hand(model, frame, chosen, "international") for chosen in choices]
    cells = expected_innovation(
        model, frame, "pipeline", k, targeting="no_pipeline", allocation="per_region"
    )
    assert cells[-1][3] * len(frame) == pytest.approx(np.mean(totals), rel=1e-12)


def test_smallest_targeting_shares_the_boundary_among_tied_firms(fitted):
    data, model = fitted
    frame = _small(data)
    frame["employees"] = [40, 12, 30, 30, 30, 500, 30, 200, 15]
    k = 3  # rows 1 (12) and 8 (15) are certain; one of rows 2, 3, 6 (30; row 4 is at the cap)
    totals = [_by_hand(model, frame, [1, 8, tied], "international") for tied in (2, 3, 6)]
    cells = expected_innovation(model, frame, "pipeline", k, targeting="smallest")
    assert cells[-1][3] * len(frame) == pytest.approx(np.mean(totals), rel=1e-12)
    shares = treatment_shares(frame, "international", k, targeting="smallest")
    assert shares.tolist() == pytest.approx([0, 1, 1 / 3, 1 / 3, 0, 0, 1 / 3, 0, 1])


def test_sampling_weights_equal_replicating_each_firm(fitted):
    data, model = fitted
    frame = _small(data)
    frame["weight"] = [1, 3, 2, 1, 4, 2, 1, 1, 2]
    expanded = frame.loc[frame.index.repeat(frame["weight"])].reset_index(drop=True)
    weighted = expected_innovation(model, frame, "cluster", 5, weight_column="weight")
    replicated = expected_innovation(model, expanded, "cluster", 5)
    for one, other in zip(weighted, replicated, strict=True):
        assert one[0] == other[0]
        assert one[1:] == pytest.approx(other[1:], rel=1e-12)


def test_treatment_shares_cap_at_the_eligible_firms():
    frame = pd.DataFrame(
        {
            "breadth_international": [0, 6, 2, 0],
            "region": ["a", "a", "b", "b"],
            "employees": [20, 30, 40, 50],
        }
    )
    shares = treatment_shares(frame, "international", 10)
    assert shares.tolist() == [1, 0, 1, 1]
    assert treatment_shares(frame, "international", 1.5).sum() == pytest.approx(1.5)
    assert fill_in_order(np.zeros(4), np.ones(4), 2).tolist() == [0.5] * 4
    with pytest.raises(InputError, match="targeting"):
        treatment_shares(frame, "international", 1, targeting="largest")


def test_apply_programme_leaves_input_alone_and_rebuilds_flags_and_regimes(fitted):
    data, _ = fitted
    frame = _small(data)
    before = frame.copy()
    changed = apply_programme(frame, "international")
    pd.testing.assert_frame_equal(frame, before)
    assert changed.loc[0, "breadth_international"] == 6  # capped
    assert changed.loc[1, "breadth_international"] == 1
    assert changed.loc[1, "any_international"] == 1
    assert list(changed.regime.cat.categories) == REGIME_LEVELS
    for row in range(len(frame)):
        assert changed.loc[row, "regime"] == _hand_regime(
            changed.loc[row, "breadth_regional"], changed.loc[row, "breadth_international"]
        )
    assert (
        changed.breadth_international_with_group - frame.breadth_international_with_group
    ).tolist() == (changed.breadth_international - frame.breadth_international).tolist()


def test_bootstrap_is_stratified_reproducible_and_brackets_the_point(fitted):
    data, _ = fitted
    counts = stratified_counts(data.region.to_numpy(), 7, seed=3)
    for region in data.region.unique():
        in_region = (data.region == region).to_numpy()
        assert (counts[in_region].sum(axis=0) == in_region.sum()).all()
        assert (counts[~in_region] >= 0).all()
    model = fit(FORMULA_CORE, data)

    def run(seed):
        return counterfactual(model, data, "pipeline", 100, bootstrap_replications=40, seed=seed)

    first, again, other = run(5), run(5), run(6)
    assert encode(first) == encode(again)
    assert encode(first) != encode(other)
    total = first.cell("all")
    assert total.extra_innovators > 0
    assert total.extra_innovators_interval.contains(total.extra_innovators)
    assert total.predicted_rate_interval.contains(total.predicted_rate)
    assert [cell.region for cell in first.cells] == ["Bergen", "Oslo", "Stavanger", "all"]
    assert sum(cell.extra_innovators for cell in first.cells[:-1]) == pytest.approx(
        total.extra_innovators
    )
    assert first.bootstrap_replications == 40
    # the point figures are the arithmetic checked by enumeration above
    point = expected_innovation(model, data, "pipeline", 100)
    for cell, row in zip(first.cells, point, strict=True):
        assert (cell.region, cell.firms) == row[:2]
        assert [cell.baseline_rate, cell.predicted_rate, cell.extra_innovators] == pytest.approx(
            list(row[2:]), rel=1e-12
        )


def test_batched_bootstrap_replicate_equals_refitting_the_resampled_firms(fitted):
    """One replicate by hand: duplicate the drawn firms, refit, recompute the programme."""
    data, _ = fitted
    model = fit(FORMULA_CORE, data)
    counts = stratified_counts(data.region.to_numpy(), 1, seed=9)[:, 0].astype(int)
    resampled = data.loc[data.index.repeat(counts)].reset_index(drop=True)
    refitted = fit(FORMULA_CORE, resampled)
    by_hand = expected_innovation(refitted, resampled, "cluster", 50, targeting="smallest")
    weights = counts.astype(float)
    batch = newton_batch(
        model.design_matrix(data),
        data["product"].to_numpy(float),
        weights,
        start=model.params[model.x_names].to_numpy(),
    )
    assert batch.params[:, 0] == pytest.approx(refitted.params[model.x_names].to_numpy(), rel=1e-7)
    weighted = data.assign(weight=weights)
    batched = expected_innovation(
        _FixedParams(model, batch.params[:, 0]),
        weighted,
        "cluster",
        50,
        targeting="smallest",
        weight_column="weight",
    )
    for one, other in zip(by_hand, batched, strict=True):
        assert one[0] == other[0]
        assert one[1:] == pytest.approx(other[1:], rel=1e-7)


class _FixedParams:
    """A fitted model's design with other coefficients (a bootstrap replicate's)."""

    def __init__(self, model, params):
        self.model, self.params = model, params

    def predict(self, data):
        return 1 / (1 + np.exp(-(self.model.design_matrix(data) @ self.params)))


COUNTERFACTUAL_COVERAGE = Claim(
    "bootstrap 95% intervals covering the true extra innovators",
    at_least(100, 0.95),
    0.95,
    (("coverage 0.80", 0.80),),
)


@pytest.mark.slow
@states(COUNTERFACTUAL_COVERAGE)
def test_bootstrap_intervals_cover_the_extra_innovators_of_the_true_model(synthetic_frame):
    """Coverage over 100 simulated outcomes on one synthetic survey's firms: the outcome is
    drawn from a logit with known coefficients, and the 95% interval of the extra innovators under
    programme P (K = 100, random) is checked against the same figure under those coefficients.
    One-sided: 100 replications (each a 199-draw bootstrap) catch an interval that covers 80%
    of the time, not one that covers 90% or over-covers; a two-sided band sized to 0.90 and 0.99
    needs about 450 replications (left to a benchmark).

    bootstrap 95% intervals covering the true extra innovators: at least 89 of 100; correct (0.95)
    passes with probability 0.995; coverage 0.80 fails with probability 0.987.
    """
    frame = synthetic_frame("norway2010", 1)
    formula = "product ~ breadth_regional * breadth_international + np.log(employees) + C(region)"
    sample = frame.dropna(subset=["product", "employees"]).reset_index(drop=True)
    truth_fit = fit(formula, sample)
    design = truth_fit.design_matrix(sample)
    coefficients = truth_fit.params[truth_fit.x_names].to_numpy()
    probability = 1 / (1 + np.exp(-(design @ coefficients)))
    truth = _FixedParams(truth_fit, coefficients)
    replications, covered = 100, 0
    rng = np.random.default_rng(2024)
    for replication in range(replications):
        data = sample.assign(product=rng.binomial(1, probability).astype(float))
        model = fit(formula, data)
        result = counterfactual(
            model, data, "pipeline", 100, bootstrap_replications=199, seed=replication
        )
        target = expected_innovation(truth, data, "pipeline", 100)[-1][4]
        covered += result.cell("all").extra_innovators_interval.contains(target)
    COUNTERFACTUAL_COVERAGE.band.check(covered, "intervals covering")


@pytest.mark.parametrize("targeting", ["random", "smallest", "no_pipeline"])
@pytest.mark.parametrize("allocation", ["total", "per_region"])
def test_replicate_shares_and_cells_at_once_equal_one_replicate_at_a_time(
    fitted, targeting, allocation
):
    """The bootstrap's vectorised calculation (every replicate's treatment shares and cells in one
    pass) gives each replicate's numbers as the one-replicate calculation does."""
    data, _model = fitted
    frame = data.reset_index(drop=True)
    plan = Targeting.of(frame, "international", 40, targeting, allocation)
    rng = np.random.default_rng(4)
    counts = rng.poisson(1.0, size=(len(frame), 12)).astype(float)
    # whole-number weights (an unweighted survey's replicates): the level sums are exact
    for b, column in enumerate(plan.shares_many(counts).T):
        assert np.array_equal(column, plan.shares(counts[:, b]))
    weights = counts * rng.uniform(0.5, 2.0, size=(len(frame), 1))
    shares = plan.shares_many(weights)
    baseline = rng.uniform(size=(len(frame), 12))
    rows, row_shares = plan.treatable_shares(weights)
    assert np.array_equal(rows, np.flatnonzero(shares.any(axis=1)))
    assert np.array_equal(np.broadcast_to(row_shares, (len(rows), 12)), shares[rows])
    change = row_shares * rng.uniform(size=(len(rows), 12))
    predicted = baseline.copy()
    predicted[rows] += change
    regions = frame["region"].to_numpy()
    members = cell_indicators(regions)
    rates, extras = _cells_many(members, weights, baseline.copy(), rows, change)
    for b in range(weights.shape[1]):
        # sampling weights: the levels' weights added in another order (the last bits)
        assert shares[:, b] == pytest.approx(plan.shares(weights[:, b]), rel=1e-14, abs=0)
        cells = _cells(regions, weights[:, b], baseline[:, b], predicted[:, b])
        assert rates[b] == pytest.approx([cell[3] for cell in cells], rel=1e-13, abs=0)
        assert extras[b] == pytest.approx([cell[4] for cell in cells], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("engine_name", ["stream", "dask"])
@pytest.mark.parametrize("targeting", ["random", "smallest"])
def test_predictions_per_chunk_give_the_in_memory_cells(
    engine_name, targeting, monkeypatch, request
):
    """On a chunked engine (bootstrap off) the predictions are made per chunk, where the chunk
    is: the client builds no design of more than a chunk's rows, and the cells are memory's."""
    from buzzpipe.estimate.result import Fit
    from buzzpipe.estimate.sources import FrameSource
    from buzzpipe.study import counterfactuals as module
    from buzzpipe.study import engine

    if engine_name == "dask":
        request.getfixturevalue("dask_client")
    data = _survey(3_000, 4)
    data.index = data.index * 3 + 7  # row labels are not positions
    model = fit(FORMULA_CORE, data, "logit")
    options = dict(targeting=targeting, bootstrap_replications=0)
    expected = counterfactual(model, data, "pipeline", 400, **options)
    sizes = []
    original_predictions, original_design = module.chunk_predictions, Fit.design_matrix

    def spy(frame, *args):
        sizes.append(len(frame))
        return original_predictions(frame, *args)

    def refused(self, frame):
        if len(frame) > 1_000:
            raise AssertionError(f"a design of {len(frame)} rows built on the client")
        return original_design(self, frame)

    def small_blocks(self, data, block_rows=1_000):
        self.data, self.block_rows = data, 1_000

    monkeypatch.setattr(module, "chunk_predictions", spy)
    monkeypatch.setattr(FrameSource, "__init__", small_blocks)
    monkeypatch.setattr(Fit, "design_matrix", refused)
    with engine.using(engine.StudyEngine(engine_name, partition_rows=1_000)):
        found = counterfactual(model, data, "pipeline", 400, **options)
    # the stream engine's chunks in this process; Dask's on the workers, who see no spy
    assert sizes == ([1_000, 1_000, 1_000] if engine_name == "stream" else [])
    assert found.cells == expected.cells  # exact sums: bit for bit


@pytest.mark.parametrize("weighted", [False, True])
def test_every_chunking_gives_the_in_memory_cells_bit_for_bit(weighted, monkeypatch):
    """The cells' totals are exact sums, each chunk's added exactly and rounded once: 1, 3 and
    7 chunks, even or not, give the in-memory cells bit for bit, and those are the correctly
    rounded sums (math.fsum) of the firms' w, w p0 and w p; the extra innovators the exact
    difference of the two totals, rounded once."""
    import math

    from buzzpipe.estimate.batched_newton import fitted_probability
    from buzzpipe.estimate.sources import FrameSource
    from buzzpipe.study import engine

    data = _survey(3_000, 6)
    if weighted:
        data["weight"] = np.random.default_rng(3).uniform(0.5, 3.0, size=len(data))
    weights = "weight" if weighted else None
    model = fit(FORMULA_CORE, data, "logit", vcov="robust", weights=weights)
    options = dict(targeting="smallest", allocation="per_region", bootstrap_replications=0)
    expected = counterfactual(model, data, "pipeline", 90, **options)
    original = FrameSource.__init__
    for rows in (3_000, 1_000, 429, 777, 2_999):  # 1, 3, 7 (uneven), 4 (uneven), 2 chunks

        def blocks(self, frame, block_rows=None, rows=rows):
            original(self, frame, rows)

        monkeypatch.setattr(FrameSource, "__init__", blocks)
        with engine.using(engine.StudyEngine("stream")):
            found = counterfactual(model, data, "pipeline", 90, **options)
        assert found.cells == expected.cells, rows
    # the totals are math.fsum's of the firms' terms (the predictions as memory makes them)
    params = model.params[model.x_names].to_numpy()
    baseline = fitted_probability(model.design_matrix(data) @ params, "logit")
    treated = fitted_probability(
        model.design_matrix(apply_programme(data, "international", BREADTH_CAP)) @ params, "logit"
    )
    shares = treatment_shares(
        data,
        "international",
        90,
        targeting="smallest",
        allocation="per_region",
        weights=data["weight"].to_numpy() if weighted else None,
    )
    w = data["weight"].to_numpy() if weighted else np.ones(len(data))
    predicted = baseline + shares * (treated - baseline)
    for cell in expected.cells:
        rows = np.ones(len(data), bool) if cell.region == "all" else data["region"] == cell.region
        rows = np.asarray(rows)
        firms = math.fsum(w[rows])
        assert cell.firms == firms
        assert cell.baseline_rate == math.fsum(w[rows] * baseline[rows]) / firms
        assert cell.predicted_rate == math.fsum(w[rows] * predicted[rows]) / firms
        both = np.concatenate([w[rows] * predicted[rows], -(w[rows] * baseline[rows])])
        assert cell.extra_innovators == math.fsum(both)


@pytest.mark.parametrize("targeting", ["random", "smallest"])
def test_dask_partitions_give_the_in_memory_cells_bit_for_bit(targeting, request):
    """20,000 firms in 7 uneven Dask partitions (the session's 2-worker cluster), with sampling
    weights: the cells are memory's bit for bit (exact sums whatever the partitioning)."""
    from buzzpipe.study import engine

    request.getfixturevalue("dask_client")
    data = _survey(20_000, 8)
    data["weight"] = np.random.default_rng(9).uniform(0.5, 3.0, size=len(data))
    model = fit(FORMULA_CORE, data, "logit", vcov="robust", weights="weight")
    options = dict(targeting=targeting, allocation="per_region", bootstrap_replications=0)
    expected = counterfactual(model, data, "pipeline", 700, **options)
    with engine.using(engine.StudyEngine("dask", partition_rows=3_001)):
        found = counterfactual(model, data, "pipeline", 700, **options)
    assert found.cells == expected.cells


@pytest.mark.parametrize(
    ("engine_name", "targeting", "allocation", "weighted", "firms_treated"),
    [
        ("stream", "random", "per_region", True, 60),
        ("stream", "smallest", "per_region", True, 60),
        ("stream", "smallest", "total", False, 5_000),  # more than the eligible firms
        ("stream", "no_pipeline", "total", True, 150),
        ("dask", "smallest", "per_region", True, 60),
        ("dask", "no_pipeline", "per_region", False, 400),
    ],
)
def test_chunked_programmes_bring_no_firm_back(
    engine_name, targeting, allocation, weighted, firms_treated, monkeypatch, request
):
    """The treatment shares are filled from each chunk's fill-order levels and the cells summed
    where the chunks are: the same cells and notes as in memory, for every targeting and
    allocation, with sampling weights, and nothing with one entry per firm comes back."""
    from buzzpipe.study import engine

    if engine_name == "dask":
        request.getfixturevalue("dask_client")
    data = _survey(3_000, 5)
    data.index = data.index * 2 + 1
    if weighted:
        data["weight"] = np.random.default_rng(2).uniform(0.5, 3.0, size=len(data))
    model = fit(FORMULA_CORE, data, "logit", vcov="robust", weights="weight" if weighted else None)
    options = dict(targeting=targeting, allocation=allocation, bootstrap_replications=0)
    expected = counterfactual(model, data, "pipeline", firms_treated, **options)
    returned = []
    original = engine.StudyEngine.map_chunks

    def spy(self, frame, function, *args):
        found = original(self, frame, function, *args)
        returned.append(found)
        return found

    monkeypatch.setattr(engine.StudyEngine, "map_chunks", spy)
    with engine.using(engine.StudyEngine(engine_name, partition_rows=1_000)):
        found = counterfactual(model, data, "pipeline", firms_treated, **options)

    def sizes(value):
        if isinstance(value, dict):
            yield len(value)
            for item in value.values():
                yield from sizes(item)
        elif isinstance(value, (tuple, list)):
            for item in value:
                yield from sizes(item)
        elif isinstance(value, np.ndarray):
            yield value.size

    assert len(returned) == 2 and max(max(sizes(r)) for r in returned) < 500
    assert found.notes == expected.notes
    assert found.cells == expected.cells  # exact sums: bit for bit


def _counts_one_replicate_at_a_time(regions, replications, seed):
    """The bootstrap counts as they are defined: replicate b's own generator
    ``default_rng(SeedSequence(seed).spawn(B)[b])`` draws ``integers(0, size, size=size)`` for
    each region in sorted order (its members in their order)."""
    labels = sorted(set(regions.tolist()))
    members = [np.flatnonzero(regions == label) for label in labels]
    counts = np.zeros((len(regions), replications))
    for b, child in enumerate(np.random.SeedSequence(seed).spawn(replications)):
        rng = np.random.default_rng(child)
        for rows in members:
            np.add.at(counts[:, b], rows[rng.integers(0, len(rows), size=len(rows))], 1.0)
    return counts


@pytest.mark.parametrize("seed", [0, 3, 2010, 2**40 + 17])
def test_counts_drawn_at_once_are_each_replicates_own_draws(seed):
    """All replicates' draws at once from the generators' raw output are numpy's own draws,
    bit for bit: regions of odd and even size, a region of one firm (numpy draws nothing for
    it) between others, unsorted labels."""
    rng = np.random.default_rng(seed % 1000)
    regions = rng.choice(["Oslo", "Bergen", "Tromso", "Alta"], size=301)
    regions[[5, 200]] = ["Molde", "Aaland"]  # regions of one firm, sorted first and in the middle
    counts = stratified_counts(regions, 23, seed)
    assert counts.shape == (301, 23) and counts.flags.c_contiguous
    assert np.array_equal(counts, _counts_one_replicate_at_a_time(regions, 23, seed))


def test_counts_fall_back_to_numpy_where_it_could_reject(monkeypatch):
    """A replicate whose words numpy's rule could reject is drawn by ``integers`` itself: with
    every replicate marked so, the counts are still each replicate's own."""
    import buzzpipe.study.counterfactuals as module

    regions = np.random.default_rng(1).choice(["a", "b", "c"], size=97)
    exact_counts = module.lemire_counts

    def none_exact(raw, sizes, starts, members, out):
        exact_counts(raw, sizes, starts, members, out)
        return np.zeros(raw.shape[0], dtype=bool)

    monkeypatch.setattr(module, "lemire_counts", none_exact)
    assert np.array_equal(
        stratified_counts(regions, 9, 5), _counts_one_replicate_at_a_time(regions, 9, 5)
    )


@pytest.mark.parametrize("seed", [0, 5, 2513379282, 2**32, 2**40 + 17, 2**64 + 5, 2**130 + 3])
@pytest.mark.parametrize("replications", [1, 3, 199])
def test_replicate_raw_is_each_spawned_generators_output(seed, replications):
    """Every child's generator seeded at once is numpy's ``PCG64(child)``, for seeds of one to
    five 32-bit words."""
    children = np.random.SeedSequence(seed).spawn(replications)
    expected = np.stack([np.random.PCG64(child).random_raw(7) for child in children])
    assert np.array_equal(replicate_raw(seed, replications, 7), expected)


def _lemire_draws(raw, bounds):
    """Numpy's ``integers`` draws for bounds below 2^32 from 64-bit outputs (Lemire's method on
    32-bit words, low half first), all replicates at once: (B x k draws, whether each replicate
    met no product whose low 32 bits fall below its bound, where numpy may reject)."""
    halves = raw.astype("<u8", copy=False).view("<u4")
    product = halves[:, : len(bounds)] * bounds
    exact = (product.astype(np.uint32) >= bounds).all(axis=1)
    return product >> np.uint64(32), exact


def test_lemire_draws_are_numpys_where_marked_exact():
    """The reference draws above against ``Generator.integers`` with bounds near 2^32, where
    numpy rejects often: every replicate marked exact has numpy's draws, and the ones numpy
    drew differently are marked."""
    bounds = np.array([3_000_000_019, 7, 2_147_483_659, 1_000_003, 5], dtype=np.uint64)
    marked = differs = 0
    for seed in range(400):
        raw = np.random.PCG64(np.random.SeedSequence(seed)).random_raw(3)[None, :]
        draws, exact = _lemire_draws(raw, bounds)
        generator = np.random.default_rng(np.random.SeedSequence(seed))
        numpy_draws = np.array([generator.integers(0, int(bound)) for bound in bounds])
        same = np.array_equal(draws[0].astype(np.int64), numpy_draws)
        assert same or not exact[0], seed
        marked += bool(exact[0])
        differs += not same
    assert marked > 20 and differs > 20  # both kinds met


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_counts_are_the_reference_draws_counted(seed):
    """``lemire_counts`` (one compiled pass) against the reference draws counted by numpy: the
    same counts and the same replicates marked, with words chosen so that about half the
    replicates meet a product numpy may reject (words whose low 32 bits times the bound fall
    below it), regions of one firm (no word) and of odd size (a last half word unused)."""
    rng = np.random.default_rng(seed)
    sizes = np.array([3, 1, 5, 2, 1, 4])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    members = rng.permutation(sizes.sum())
    drawing = np.repeat(sizes > 1, sizes)
    bounds = np.repeat(sizes, sizes)[drawing].astype(np.uint64)
    raw = rng.integers(0, 2**64, size=(64, (len(bounds) + 1) // 2), dtype=np.uint64)
    halves = raw.view("<u4")  # low then high half of each word
    rejecting = rng.random(64) < 0.5
    for b in np.flatnonzero(rejecting):  # a word of 0: product 0, below every bound
        halves[b, rng.integers(0, len(bounds))] = 0
    draws, exact = _lemire_draws(raw, bounds)
    expected = np.zeros((len(members), 64))
    places = np.repeat(starts, sizes)
    for b in range(64):
        drawn = np.arange(len(members))  # a region of one firm: its one member
        drawn[drawing] = places[drawing] + draws[b].astype(np.int64)
        np.add.at(expected[:, b], members[drawn], 1.0)
    out = np.full((len(members), 64), np.nan)
    marked = lemire_counts(raw, sizes, starts, members, out)
    assert np.array_equal(out, expected)
    assert np.array_equal(marked, exact) and not marked[rejecting].any() and marked.any()


@pytest.mark.parametrize("levels", [1, 2, 40, 300])
def test_level_sums_add_as_add_at(levels):
    """Each level's rows added one after another in the members' order: ``np.add.at``'s
    numbers bit for bit, with levels of many members, of one, and levels no member has."""
    rng = np.random.default_rng(levels)
    weights = rng.exponential(size=(500, 17)) * rng.integers(0, 4, size=(500, 17))
    members = np.sort(rng.choice(500, size=350, replace=False))
    inverse = rng.integers(0, levels, size=350) if levels > 2 else rng.integers(0, 2, 350) % levels
    expected = np.zeros((levels, 17))
    np.add.at(expected, inverse, weights[members])
    assert np.array_equal(level_sums(inverse, levels, weights, members), expected)


@pytest.mark.parametrize("targeting", ["random", "smallest", "no_pipeline"])
@pytest.mark.parametrize("allocation", ["total", "per_region"])
def test_bootstrap_cells_equal_every_firm_predicted_under_the_programme(
    fitted, targeting, allocation
):
    """The bootstrap's intervals (predictions under the programme made only for the firms some
    replicate may treat, every replicate at once) are those of predicting every firm under it,
    one replicate at a time (to rounding: the sums run in another order)."""
    data, _ = fitted
    frame = data.reset_index(drop=True)
    model = fit(FORMULA_CORE, frame)
    result = counterfactual(
        model,
        frame,
        "cluster",
        30,
        targeting=targeting,
        allocation=allocation,
        bootstrap_replications=25,
        seed=4,
    )
    counts = _counts_one_replicate_at_a_time(frame["region"].to_numpy(), 25, 4)
    x_base = np.asarray(model.design_matrix(frame), dtype=float)
    x_treated = np.asarray(model.design_matrix(apply_programme(frame, "regional")), dtype=float)
    start = model.params[model.x_names].to_numpy()
    batch = newton_batch(x_base, frame["product"].to_numpy(float), counts, start=start)
    assert batch.converged.all()
    plan = Targeting.of(frame, "regional", 30, targeting, allocation)
    rows = []
    for b in range(25):
        baseline = 1 / (1 + np.exp(-(x_base @ batch.params[:, b])))
        treated = 1 / (1 + np.exp(-(x_treated @ batch.params[:, b])))
        predicted = baseline + plan.shares(counts[:, b]) * (treated - baseline)
        rows.append(_cells(frame["region"].to_numpy(), counts[:, b], baseline, predicted))
    for index, cell in enumerate(result.cells):
        extras = [row[index][4] for row in rows]
        interval = cell.extra_innovators_interval.segments[0]
        assert interval == pytest.approx(tuple(np.quantile(extras, [0.025, 0.975])), rel=1e-9)


def test_replicate_probability_is_the_familys_cdf():
    """The bootstrap's predictions: the logit's by numpy's exponential within a few units in
    the last place of ``scipy.special.expit`` (0 and 1 far out, no warning), the probit's its
    cdf exactly; written into ``out``."""
    from scipy import special, stats

    index = np.concatenate([np.linspace(-40, 40, 2002), [-800.0, 800.0]]).reshape(-1, 3)
    expected = special.expit(index)
    out = np.empty_like(index)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = replicate_probability(index.copy(), "logit", out=out)
    assert got is out
    np.testing.assert_allclose(got, expected, rtol=4e-16, atol=0)
    probit = replicate_probability(index.copy(), "probit", out=np.empty_like(index))
    assert np.array_equal(probit, stats.norm.cdf(index))


class _KeptArrays:
    """``ProgrammeInputs.kept_array`` alone: a fresh array each time."""

    def kept_array(self, name, shape):
        return np.full(shape, np.nan)


@pytest.mark.parametrize("treatable_firms", [60, 59, 20])
@pytest.mark.parametrize("one_row", [True, False])
def test_programme_changes_for_every_firm_equal_the_treatable_rows(treatable_firms, one_row):
    """The changes t (p1 - p0) made for every firm (most firms treatable, shares needing no
    gathering: rows None, zero outside) or for the treatable rows alone: each the changes of
    the direct formula in those rows, and the cells of either the same to rounding."""
    rng = np.random.default_rng(treatable_firms)
    n, p, replicates = 60, 4, 9
    x_base, x_treated = rng.normal(size=(n, p)), rng.normal(size=(n, p))
    params = rng.normal(scale=0.5, size=(p, replicates))
    baseline = 1 / (1 + np.exp(-(x_base @ params)))
    treatable = np.sort(rng.choice(n, size=treatable_firms, replace=False))
    shares = rng.uniform(size=(1 if one_row else treatable_firms, replicates))
    rows, change = _programme_changes(
        _KeptArrays(), x_treated, params, baseline, treatable, shares, "logit"
    )
    expected = shares * (1 / (1 + np.exp(-(x_treated[treatable] @ params))) - baseline[treatable])
    whole = treatable_firms > n / 2 and (one_row or treatable_firms == n)
    if whole:
        assert rows is None and change.shape == (n, replicates)
        outside = np.setdiff1d(np.arange(n), treatable)
        assert (change[outside] == 0.0).all()
        within = change[treatable]
    else:
        assert np.array_equal(rows, treatable)
        within = change
    np.testing.assert_allclose(within, expected, rtol=1e-13, atol=1e-16)
    regions = rng.choice(["a", "b", "c"], size=n)
    members = cell_indicators(regions)
    weights = rng.poisson(1.0, size=(n, replicates)).astype(float)
    rates, extras = _cells_many(members, weights, baseline, rows, change.copy())
    rates_rows, extras_rows = _cells_many(members, weights, baseline, treatable, within.copy())
    np.testing.assert_allclose(rates, rates_rows, rtol=1e-14, atol=0)
    np.testing.assert_allclose(extras, extras_rows, rtol=1e-13, atol=1e-15)
