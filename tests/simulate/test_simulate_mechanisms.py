"""The model's mechanisms, each shown over many seeds and paired with the case that removes it.

Fast tests average a handful of replicates (fixed seeds, so they are exact regressions of the
mechanism); the slow tests count, over many replicates, how often the mechanism shows in a
single run and require a pass rate no lower than the binomial 0.1% quantile of the rate stated.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from bands import Claim, at_least, states

from buzzpipe.simulate.experiments import openness_sweep, pipelines_by_city_size
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.run import replicate_seeds, simulate
from buzzpipe.simulate.survey_output import breadth, survey_frame

# Lock-in conditions: a big and a very small city with no national ties between them, so
# pipelines are the small city's only outside channel; open local exchange (omega = 0.2).
# Fast test: 200 and 10 firms, 160 steps; slow test: 300 and 12 firms, 240 steps, where the
# per-run signal of the growing gap is clearer.
LOCK_IN = ModelParameters(national_partners=0.0, omega=0.2)
FAST_LOCK_IN = ({"big": 200, "small": 10}, 160, LOCK_IN.replace(world_size=200))
SLOW_LOCK_IN = ({"big": 300, "small": 12}, 240, LOCK_IN)

# Survey conditions: five cities of the Norwegian survey's size (1,604 firms), no free local
# sharing (omega = 0, as the survey found for pipeline knowledge), crossover mask of one half.
NORWAY_CITIES = {"Oslo": 700, "Bergen": 300, "Stavanger": 250, "Trondheim": 250,
                 "Kristiansand": 104}  # fmt: skip
SURVEY = ModelParameters(omega=0.0, copy_share=0.5)


def lock_in_table(conditions: tuple, replicates: int, seed: int) -> pd.DataFrame:
    cities, steps, parameters = conditions
    table = pipelines_by_city_size(parameters, cities, steps, seed, replicates)
    return table.pivot_table(
        index=["replicate", "pipelines"], columns="city", values=list(table.columns[3:])
    )


def test_small_city_without_pipelines_locks_in_and_pipelines_close_the_gap():
    wide = lock_in_table(FAST_LOCK_IN, replicates=6, seed=2011).groupby(level="pipelines").mean()
    off, on = wide.loc["off"], wide.loc["on"]
    # without pipelines the small city innovates less, is less diverse, and ends further behind
    # the world frontier
    assert off[("innovation_rate", "small")] < off[("innovation_rate", "big")] - 0.1
    assert off[("diversity", "small")] < 0.5 * off[("diversity", "big")]
    late_gap = {
        arm: row[("frontier_gap_late", "small")] - row[("frontier_gap_late", "big")]
        for arm, row in (("off", off), ("on", on))
    }
    assert late_gap["off"] > 0.03
    # pipelines raise innovation in both cities, and the gaps close
    for city in ("big", "small"):
        assert on[("innovation_rate", city)] > off[("innovation_rate", city)]
    innovation_gap = {
        arm: row[("innovation_rate", "big")] - row[("innovation_rate", "small")]
        for arm, row in (("off", off), ("on", on))
    }
    assert innovation_gap["on"] < 0.5 * innovation_gap["off"]
    diversity_ratio = {
        arm: row[("diversity", "small")] / row[("diversity", "big")]
        for arm, row in (("off", off), ("on", on))
    }
    assert diversity_ratio["on"] > diversity_ratio["off"] + 0.2
    assert late_gap["on"] < 0.5 * late_gap["off"]


LOCK_IN_REPLICATES = 40
# the wrong implementation: the mechanism absent (no lock-in), so each per-run comparison of the
# small city with the big one is a coin flip
NO_MECHANISM = (("the mechanism absent (a coin flip, 0.5)", 0.5),)
LOCK_IN_CLAIMS = {
    rate: Claim(
        f"Runs showing a comparison of rate {rate:g}",
        at_least(LOCK_IN_REPLICATES, rate),
        rate,
        NO_MECHANISM,
    )
    for rate in (0.95, 0.85, 0.8)
}


@pytest.mark.slow
@states(*LOCK_IN_CLAIMS.values())
def test_lock_in_pass_rates_over_many_replicates():
    """Over 40 replicates, how often each sign of lock-in shows in a single run, at the per-run
    rates measured in an independent 20-replicate exploration (seed 99: 1.0, 1.0, 0.9, 0.8 and
    0.85), stated a little lower; one-sided, since the error is a mechanism that does not work.
    Runs showing a comparison of rate 0.95: at least 34 of 40; correct (0.95) passes with
    probability 0.996; the mechanism absent (a coin flip, 0.5) fails with probability 0.999.
    Runs showing a comparison of rate 0.85: at least 28 of 40; correct (0.85) passes with
    probability 0.995; the mechanism absent (a coin flip, 0.5) fails with probability 0.991.
    Runs showing a comparison of rate 0.8: at least 26 of 40; correct (0.8) passes with
    probability 0.992; the mechanism absent (a coin flip, 0.5) fails with probability 0.959."""
    wide = lock_in_table(SLOW_LOCK_IN, replicates=LOCK_IN_REPLICATES, seed=7)
    off = wide.xs("off", level="pipelines")
    on = wide.xs("on", level="pipelines")

    def check(condition: pd.Series, rate: float, what: str) -> None:
        LOCK_IN_CLAIMS[rate].band.check(int(condition.sum()), what)

    innovation_gap_off = off[("innovation_rate", "big")] - off[("innovation_rate", "small")]
    innovation_gap_on = on[("innovation_rate", "big")] - on[("innovation_rate", "small")]
    check(innovation_gap_off > 0, 0.95, "small city innovates less without pipelines")
    check(off[("diversity", "small")] < off[("diversity", "big")], 0.95, "small city less diverse")
    check(
        off[("improvement_rate", "small")] < off[("improvement_rate", "big")],
        0.85,
        "small city improves less",
    )
    # the gap to the world frontier grows more in the small city than in the big one
    growth = off[("gap_growth", "small")] - off[("gap_growth", "big")]
    check(growth > 0, 0.8, "frontier gap grows more in the small city")
    assert growth.mean() > 3 * growth.std(ddof=1) / np.sqrt(LOCK_IN_REPLICATES)  # t 4.4 at 20
    check(innovation_gap_on < innovation_gap_off, 0.8, "pipelines narrow the innovation gap")


def international_effect(parameters: ModelParameters, seed, steps: int = 200) -> tuple:
    """Logit of product innovation on breadth by scale and controls (statsmodels, robust)."""
    frame = survey_frame(simulate(parameters, NORWAY_CITIES, steps, seed))
    for scale in ("regional", "national", "international"):
        frame[f"breadth_{scale}"] = breadth(frame, scale)
    frame["log_employees"] = np.log(frame["employees"])
    fit = smf.logit(
        "product ~ breadth_regional + breadth_national + breadth_international"
        " + log_employees + foreign_share + C(region)",
        frame,
    ).fit(disp=0, cov_type="HC0")
    return fit.params["breadth_international"], fit.bse["breadth_international"]


def test_pipelines_raise_innovation_and_a_world_without_news_removes_the_effect():
    seeds = replicate_seeds(1604, 4)
    evolving = np.array([international_effect(SURVEY, seed) for seed in seeds])
    barren = np.array(
        [international_effect(SURVEY.replace(world_novelty="none"), seed) for seed in seeds]
    )
    # pooled over replicates: the mean coefficient and its standard error from the spread
    for label, table in (("evolving", evolving), ("none", barren)):
        mean = table[:, 0].mean()
        error = table[:, 0].std(ddof=1) / np.sqrt(len(table))
        if label == "evolving":
            assert mean > 0.1 and mean > 3 * error  # odds ratio above 1.1, clearly detected
        else:
            assert abs(mean) < 3 * max(error, table[:, 1].mean() / np.sqrt(len(table)))
            assert abs(mean) < 0.1


DETECTION = Claim(
    "Replicates whose robust z on the international odds ratio exceeds 1.96",
    at_least(30, 0.9),
    0.9,
    (("power 0.6", 0.6),),
)
COVERAGE = Claim(
    "Replicates of a world without news whose 95% interval covers odds ratio 1",
    at_least(60, 0.95),
    0.95,
    (("coverage 0.80", 0.80),),
)


@pytest.mark.slow
@states(DETECTION, COVERAGE)
def test_international_odds_ratio_detection_and_coverage_rates():
    """Power measured on 20 independent replicates (seed 99): detected in 20, odds ratio 1.43
    on average; covered in 20. Detection is stated at power 0.9 over 30 replicates (one-sided:
    more power is no error), coverage at its nominal 0.95 over 60 (one-sided: an interval too
    wide, coverage 0.99, would need about 450 replicates to tell from 0.95, a bench's cost, and
    is not caught here). Replicates whose robust z on the international odds ratio exceeds
    1.96: at least 23 of 30; correct (0.9) passes with probability 0.992; power 0.6 fails with
    probability 0.956. Replicates of a world without news whose 95% interval covers odds ratio
    1: at least 53 of 60; correct (0.95) passes with probability 0.990; coverage 0.80 fails
    with probability 0.933."""
    evolving = np.array(
        [international_effect(SURVEY, seed) for seed in replicate_seeds(42, DETECTION.band.trials)]
    )
    barren = np.array(
        [
            international_effect(SURVEY.replace(world_novelty="none"), seed)
            for seed in replicate_seeds(42, COVERAGE.band.trials)
        ]
    )
    DETECTION.band.check(int((evolving[:, 0] / evolving[:, 1] > 1.96).sum()), "detected")
    COVERAGE.band.check(int((np.abs(barren[:, 0] / barren[:, 1]) < 1.96).sum()), "covered")


def test_openness_spreads_knowledge_and_lowers_diversity():
    table = openness_sweep(
        LOCK_IN.replace(pipeline_share=0.0), {"city": 200}, 120, 5, 4, omega_values=(0.0, 1.0)
    )
    diversity = table.pivot_table(index="replicate", columns="omega", values="diversity")
    assert (diversity[1.0] < diversity[0.0]).all()
    improvement = table.pivot_table(index="replicate", columns="omega", values="mean_fitness")
    assert improvement[1.0].mean() > improvement[0.0].mean()
