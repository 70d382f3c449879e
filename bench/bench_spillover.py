"""Size and power of the spill-over tests over many seeds, and the cost of each, same run.

Without links (the leave-one-out share, 40 region x industry cells, N = 1,604, the survey of
``tests/study/test_study_spillover.py``): rejection rates at 5% of the primary between-cells
test and of the pooled cell-clustered Wald test, with no spill-over (size) and with spill-overs
of 1.5 and 2.5 on the log-odds (power). With links (``--links``): the rejection rate of the
firm-level robust exposure test on ``norway2010`` surveys (no spill-over there).

    PYTHONPATH=src python bench/bench_spillover.py --seeds 300 [--links 200]

Prints each rate with its binomial standard error, the mean standard error beside the actual
spread of the estimates, the power of each test at the critical value that gives it a 5% size
on the null seeds of the same run (size-adjusted power), and the seconds per seed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import statsmodels.api as sm  # noqa: E402
import statsmodels.formula.api as smf  # noqa: E402
from scipy import stats  # noqa: E402
from test_study_spillover import spillover_results, spillover_survey  # noqa: E402

from buzzpipe.results import StudyResults  # noqa: E402
from buzzpipe.study.battery import analysis_frame_of  # noqa: E402
from buzzpipe.study.models import breadth_terms, control_terms  # noqa: E402
from buzzpipe.study.spillover import (  # noqa: E402
    CELL,
    CELL_CLUSTERED,
    EXCLUSION,
    LEAVE_ONE_OUT,
    assess_spillover,
    leave_one_out_parts,
)
from buzzpipe.synth import synthesize  # noqa: E402

ALPHA = 0.05


def rate(rejections: int, seeds: int) -> str:
    """A rejection rate with its binomial standard error at that rate."""
    share = rejections / seeds
    return f"{share:6.3f} (+- {math.sqrt(max(share * (1 - share), 1e-12) / seeds):.3f}, n={seeds})"


def without_links(seeds: int, spillover: float, first_seed: int) -> dict[str, np.ndarray]:
    """Rejection rates, mean standard error and spread of the estimates of each no-links
    test over the seeds; returns each test's statistics (estimate / standard error)."""
    names = ("spillover_exposure", CELL_CLUSTERED)
    estimates = {name: [] for name in names}
    errors = {name: [] for name in names}
    p_values = {name: [] for name in names}
    started = time.perf_counter()
    for seed in range(seeds):
        results = spillover_results(spillover_survey(first_seed + seed, spillover))
        for name in names:
            test = results.tests["product"][name]
            estimates[name].append(test.estimate)
            errors[name].append(test.std_error)
            p_values[name].append(test.p_value)
    seconds = (time.perf_counter() - started) / seeds
    for name in names:
        rejections = int(np.sum(np.array(p_values[name]) < ALPHA))
        print(
            f"spill-over {spillover}, {name}: rejects {rate(rejections, seeds)}; mean estimate "
            f"{np.mean(estimates[name]):.3f}, spread across seeds {np.std(estimates[name]):.3f}, "
            f"mean standard error {np.mean(errors[name]):.3f}"
        )
    print(f"  {seconds:.3f} s per seed (all exposure models)")
    return {name: np.array(estimates[name]) / np.array(errors[name]) for name in names}


def with_links(seeds: int, first_seed: int) -> None:
    """Rejection rate of the with-links exposure test on norway2010 (no spill-over)."""
    rejections, estimates = 0, []
    for seed in range(seeds):
        frame = analysis_frame_of(synthesize("norway2010", first_seed + seed))
        controls, control_columns = control_terms(frame)
        results = StudyResults(meta={"notes": []})
        assess_spillover(
            results, "product", frame, breadth_terms(frame), controls, control_columns, "logit"
        )
        test = results.tests["product"]["spillover_exposure"]
        rejections += test.p_value < ALPHA
        estimates.append(test.estimate)
    mean = sum(estimates) / len(estimates)
    print(
        f"norway2010 with links, robust: size {rate(rejections, seeds)}; mean estimate {mean:.3f}"
    )


def cr2_satterthwaite(
    design: np.ndarray, response: np.ndarray, clusters: np.ndarray, column: int
) -> tuple[float, float, float, float]:
    """(estimate, CR2 standard error, Bell-McCaffrey Satterthwaite df, p-value) of one OLS
    coefficient with errors clustered by ``clusters`` (Bell and McCaffrey 2002; Imbens and
    Kolesar 2016: df from the homoskedastic working model)."""
    inverse = np.linalg.inv(design.T @ design)
    coefficients = inverse @ design.T @ response
    residuals = response - design @ coefficients
    annihilator = np.eye(len(response)) - design @ inverse @ design.T
    contrast = inverse[:, column]
    columns, variance = [], 0.0
    for label in np.unique(clusters):
        rows = np.flatnonzero(clusters == label)
        values, vectors = np.linalg.eigh(annihilator[np.ix_(rows, rows)])
        root = np.where(values > 1e-12, 1 / np.sqrt(np.clip(values, 1e-12, None)), 0.0)
        adjust = (vectors * root) @ vectors.T  # (I - H_gg)^(-1/2)
        weight = adjust @ (design[rows] @ contrast)
        variance += float(weight @ residuals[rows]) ** 2
        columns.append(annihilator[:, rows] @ weight)
    gram = np.array(columns) @ np.array(columns).T
    df = float(np.trace(gram) ** 2 / np.sum(gram * gram))
    estimate, std_error = float(coefficients[column]), float(np.sqrt(variance))
    return estimate, std_error, df, float(2 * stats.t.sf(abs(estimate / std_error), df))


def check_cr2_against_statsmodels_hc2(seed: int = 7) -> None:
    """With every firm its own cluster CR2 is HC2: compared with statsmodels' HC2 error."""
    rng = np.random.default_rng(seed)
    design = np.column_stack([np.ones(200), rng.normal(size=(200, 2))])
    response = design @ [0.5, 1.0, 0.0] + rng.normal(size=200) * (1 + np.abs(design[:, 1]))
    _, std_error, _, _ = cr2_satterthwaite(design, response, np.arange(200), 2)
    theirs = sm.OLS(response, design).fit(cov_type="HC2").bse[2]
    assert abs(std_error / theirs - 1) < 1e-10, (std_error, theirs)


def lpm_cr2_size(seeds: int, spillover: float, first_seed: int) -> None:
    """Rejection rate of the LPM spill-over coefficient with CR2 errors by cell and
    Satterthwaite df (the cross-check the issue asks for), on the no-links surveys."""
    check_cr2_against_statsmodels_hc2()
    rejections, degrees = 0, []
    for seed in range(seeds):
        frame = spillover_survey(first_seed + seed, spillover)
        frame[LEAVE_ONE_OUT], frame[EXCLUSION], frame[CELL] = leave_one_out_parts(frame)
        frame = frame.dropna(subset=[LEAVE_ONE_OUT])
        frame["own_pipeline"] = (frame["breadth_international"] > 0).astype(float)
        model = smf.ols(
            f"product ~ {LEAVE_ONE_OUT} + breadth_regional + breadth_international + own_pipeline"
            f" + {EXCLUSION} + np.log(employees) + C(industry) + C(region)",
            frame,
        )
        column = model.exog_names.index(LEAVE_ONE_OUT)
        _, _, df, p_value = cr2_satterthwaite(
            model.exog, model.endog, frame[CELL].to_numpy(), column
        )
        rejections += p_value < ALPHA
        degrees.append(df)
    print(
        f"LPM, CR2 by cell, Satterthwaite df (mean {np.mean(degrees):.1f}), spill-over "
        f"{spillover}: {rate(rejections, seeds)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--power-seeds", type=int, default=100)
    parser.add_argument("--links", type=int, default=0)
    parser.add_argument("--cr2", type=int, default=0, help="seeds of the LPM CR2 cross-check")
    arguments = parser.parse_args()
    if arguments.cr2:
        lpm_cr2_size(arguments.cr2, 0.0, 1000)
        return
    null = without_links(arguments.seeds, 0.0, 1000)
    for effect in (1.5, 2.5):
        alternative = without_links(arguments.power_seeds, effect, 2000)
        for name, statistics in null.items():
            critical = np.quantile(np.abs(statistics), 1 - ALPHA)  # size-adjusted
            detected = int(np.sum(alternative[name] > critical))
            print(
                f"  size-adjusted power of {name} (|t| > {critical:.2f}, the null's 95th "
                f"percentile): {rate(detected, len(alternative[name]))}"
            )
    if arguments.links:
        with_links(arguments.links, 0)


if __name__ == "__main__":
    main()
