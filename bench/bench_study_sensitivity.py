"""Cost of the study's new sensitivity parts against the existing one, measured in the same run
on a synthetic norway2010 survey (N = 1,604, product):

- the existing sensitivity column of the controls model (region clusters and the wild score
  bootstrap with confidence sets for every breadth term);
- the new columns of the pipelines-versus-buzz differences (reparametrised fits, two
  differences);
- the spill-over without links, with and without the wild score bootstrap by cell.

BLAS threads pinned to one. Run:
``PYTHONPATH=src python bench/bench_study_sensitivity.py [--draws 9999] [--repeat 3]``.
Prints medians (wall and CPU) and ratios; compare ratios, the machine is shared.
"""

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from buzzpipe.results import StudyResults
from buzzpipe.study.models import (
    PRIMARY_INFERENCE,
    breadth_terms,
    control_terms,
    fit_outcome_models,
    model_result,
)
from buzzpipe.study.sensitivity import add_difference_sensitivity, add_sensitivity
from buzzpipe.study.spillover import EXPOSURE, assess_spillover
from buzzpipe.synth import synthesize


def median_times(function, repeat: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of repeated calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=9999)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = synthesize("norway2010", 1).analysis_frame()
    sample, fits = fit_outcome_models(frame, "product")
    specification, fitted = fits["controls"]
    breadth = [term for term in breadth_terms(sample) if term in fitted.params.index]
    controls, control_columns = control_terms(frame)
    no_links = frame.drop(columns=[c for c in frame if c.startswith(EXPOSURE)])

    def existing() -> None:
        result = model_result(specification, fitted, PRIMARY_INFERENCE)
        add_sensitivity(result, fitted, sample, breadth, seed=1, draws=args.draws)

    def differences() -> None:
        results = StudyResults(meta={"notes": []})
        results.tests["product"] = {
            "international_minus_regional": None,
            "international_minus_national": None,
        }
        add_difference_sensitivity(
            results, "product", specification.formula, sample, "logit", 1, args.draws
        )

    def spillover(draws: int) -> None:
        assess_spillover(
            StudyResults(meta={"notes": []}),
            "product",
            no_links,
            breadth_terms(no_links),
            controls,
            control_columns,
            "logit",
            seed=1,
            wild_bootstrap_draws=draws,
        )

    with threadpool_limits(1):
        timed = {
            "existing column (3 terms)": median_times(existing, args.repeat),
            "difference columns (2)": median_times(differences, args.repeat),
            "spill-over, no bootstrap": median_times(lambda: spillover(0), args.repeat),
            "spill-over, wild by cell": median_times(lambda: spillover(args.draws), args.repeat),
        }
    print(f"N = {len(frame)}, draws = {args.draws}, BLAS threads pinned to 1")
    print(f"{'':34s}{'wall':>10s}{'CPU':>10s}")
    for label, (wall, cpu) in timed.items():
        print(f"{label:34s}{wall:9.3f}s{cpu:9.3f}s")
    for label, (slow, fast) in (
        ("differences / existing column", ("difference columns (2)", "existing column (3 terms)")),
        (
            "spill-over with / without wild",
            ("spill-over, wild by cell", "spill-over, no bootstrap"),
        ),
    ):
        (wall_new, cpu_new), (wall_old, cpu_old) = timed[slow], timed[fast]
        print(f"ratio {label:28s}{wall_new / wall_old:9.2f}x{cpu_new / cpu_old:9.2f}x")


if __name__ == "__main__":
    main()
