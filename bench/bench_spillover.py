"""Size and power of the spill-over tests over many seeds, and the cost of each, same run.

Without links (the leave-one-out share, 40 region x industry cells, N = 1,604, the survey of
``tests/test_study_spillover.py``): rejection rates at 5% of the primary between-cells test and
of the pooled cell-clustered Wald test, with no spill-over (size) and with spill-overs of 1.5
and 2.5 on the log-odds (power). With links (``--links``): the rejection rate of the
firm-level robust exposure test on ``norway2010`` surveys (no spill-over there).

    PYTHONPATH=src python bench/bench_spillover.py --seeds 300 [--links 200]

Prints each rate with its binomial standard error, and the seconds per seed of each path as a
ratio to the pooled Wald fit measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_study_spillover import spillover_results, spillover_survey  # noqa: E402

from buzzpipe.study.battery import analysis_frame_of  # noqa: E402
from buzzpipe.study.models import breadth_terms, control_terms  # noqa: E402
from buzzpipe.study.results import StudyResults  # noqa: E402
from buzzpipe.study.spillover import CELL_CLUSTERED, assess_spillover  # noqa: E402
from buzzpipe.synth import synthesize  # noqa: E402

ALPHA = 0.05


def rate(rejections: int, seeds: int) -> str:
    """A rejection rate with its binomial standard error at that rate."""
    share = rejections / seeds
    return f"{share:6.3f} (+- {math.sqrt(max(share * (1 - share), 1e-12) / seeds):.3f}, n={seeds})"


def without_links(seeds: int, spillover: float, first_seed: int) -> dict[str, float]:
    """Rejections of each no-links test over the seeds, and the seconds spent."""
    counts = {"spillover_exposure": 0, CELL_CLUSTERED: 0}
    started = time.perf_counter()
    for seed in range(seeds):
        results = spillover_results(spillover_survey(first_seed + seed, spillover))
        for name in counts:
            test = results.tests["product"][name]
            counts[name] += test.p_value < ALPHA
    print(
        f"spill-over {spillover}: " + "; ".join(f"{k} {rate(v, seeds)}" for k, v in counts.items())
    )
    return {"seconds": time.perf_counter() - started}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--power-seeds", type=int, default=100)
    parser.add_argument("--links", type=int, default=0)
    arguments = parser.parse_args()
    without_links(arguments.seeds, 0.0, 1000)
    for effect in (1.5, 2.5):
        without_links(arguments.power_seeds, effect, 2000)
    if arguments.links:
        with_links(arguments.links, 0)


if __name__ == "__main__":
    main()
