"""Time ``buzzpipe replicate`` stage by stage, against a peer measured in the same run.

    PYTHONPATH=src python bench/bench_replicate.py [--preset norway2010] [--seed 2010] [--repeat 3]

Stages: drawing the synthetic survey, the descriptive table, the study battery (main models,
then each optional part added: sensitivity, heterogeneity, counterfactual programmes), and the
report (view, tables, figures, HTML with its check, Word tables, writing the files). Each is the
median of --repeat runs with BLAS on one thread (small problems run fastest so on two cores; see
shared/reference/performance.md). The peer is one statsmodels logit of the headline model on
the same survey; ratios to it make runs on a busy machine comparable. Timings are printed, never
asserted.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: F401  (the peer's formula says np.log)
from threadpoolctl import threadpool_limits


def _median_seconds(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="norway2010")
    parser.add_argument("--seed", type=int, default=2010)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replications", type=int, default=199)
    args = parser.parse_args()

    import statsmodels.formula.api as smf

    from buzzpipe.report.figures import all_figures
    from buzzpipe.report.html_check import check_report_html
    from buzzpipe.report.html_report import build_html
    from buzzpipe.report.tables import all_tables
    from buzzpipe.report.view import report_view
    from buzzpipe.report.word_table import table_docx
    from buzzpipe.report.write_report import WORD_TABLE_SUFFIX, render_report, write_files
    from buzzpipe.results import Descriptives, Source
    from buzzpipe.results.vocabulary import SourceKind
    from buzzpipe.study.battery import run_study
    from buzzpipe.study.models import control_terms
    from buzzpipe.synth import synthesize

    rows: list[tuple[str, float]] = []
    with threadpool_limits(limits=1):
        seconds, survey = _median_seconds(lambda: synthesize(args.preset, args.seed), args.repeat)
        rows.append(("survey: synthesize", seconds))
        seconds, table = _median_seconds(survey.describe, args.repeat)
        rows.append(("description", seconds))

        frame = survey.analysis_frame()
        controls, _ = control_terms(frame)
        breadth = ["breadth_regional", "breadth_national", "breadth_international"]
        formula = "product ~ " + " + ".join([*breadth, *controls])
        peer, _ = _median_seconds(
            lambda: smf.logit(formula, frame).fit(disp=0, cov_type="HC0"), args.repeat
        )

        base = {"seed": args.seed, "bootstrap_replications": args.replications}
        # cumulative configurations (differences of noisy medians would mislead); only the
        # default battery counts in the total
        parts = [
            ("main models and tests", dict(sensitivity=False, heterogeneity=False, scenarios=())),
            ("... + sensitivity", dict(heterogeneity=False, scenarios=())),
            ("... + heterogeneity", dict(scenarios=())),
        ]
        cumulative = []
        for label, options in parts:
            seconds, _ = _median_seconds(
                lambda options=options: run_study(survey, **base, **options), args.repeat
            )
            cumulative.append((label, seconds))
        seconds, results = _median_seconds(lambda: run_study(survey, **base), args.repeat)
        cumulative.append(("... + counterfactuals: the default", seconds))
        rows.append(("study battery (default)", seconds))
        results.meta.source = Source(SourceKind.SYNTHETIC, args.preset, args.seed)
        results.descriptives = Descriptives.from_table(table)
        data = results

        seconds, view = _median_seconds(lambda: report_view(data), args.repeat)
        rows.append(("report: view", seconds))
        seconds, tables = _median_seconds(lambda: all_tables(view), args.repeat)
        rows.append(("report: tables", seconds))
        seconds, figures = _median_seconds(lambda: all_figures(view), args.repeat)
        rows.append(("report: figures (PNG + SVG)", seconds))

        def html_and_check() -> str:
            html = build_html(view, tables, figures)
            check_report_html(html, [t.id for t in tables], [f.id for f in figures])
            return html

        seconds, _ = _median_seconds(html_and_check, args.repeat)
        rows.append(("report: HTML and its check", seconds))
        main_tables = [t for t in tables if t.id.endswith(WORD_TABLE_SUFFIX)]
        seconds, _ = _median_seconds(lambda: [table_docx(t) for t in main_tables], args.repeat)
        rows.append((f"report: Word tables ({len(main_tables)})", seconds))
        files = render_report(data)
        with tempfile.TemporaryDirectory() as folder:
            seconds, _ = _median_seconds(lambda: write_files(files, folder), args.repeat)
        rows.append(("report: write files", seconds))

    total = sum(seconds for _, seconds in rows)
    print(f"preset {args.preset}, seed {args.seed}, {len(frame)} firms, median of {args.repeat}")
    print(f"peer: one statsmodels logit of the headline model = {1000 * peer:.1f} ms")
    print(f"{'stage':<34} {'seconds':>8} {'share':>7} {'x peer':>8}")
    for label, seconds in rows:
        print(f"{label:<34} {seconds:8.3f} {seconds / total:7.1%} {seconds / peer:8.0f}")
    print(f"{'total':<34} {total:8.3f} {1:7.1%} {total / peer:8.0f}")
    print("study battery, cumulative configurations:")
    for label, seconds in cumulative:
        print(f"  {label:<32} {seconds:8.3f} {'':>7} {seconds / peer:8.0f}")
    print(f"report files: {len(files)}, {sum(len(b) for b in files.values()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
