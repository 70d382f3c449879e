"""Recovery of the published pattern on norway2010 under the headline rule (issue 15).

The rule was fixed before this ran (docs/few_clusters.md, ``estimate/inference_rule.py``): the
verdicts read the wild cluster score bootstrap by region where the study computes it, each
family Holm-adjusted. For each seed the study's verdict battery runs on the product outcome
(the primary family: breadth, pipelines versus buzz, complementarity, spill-over,
heterogeneity), without counterfactuals, and without the parts no verdict of the family reads
(:func:`lean`: the bootstrap confidence sets, the models other than the one with controls, the
probability changes and more; the verdicts are the full study's,
``tests/study/test_family_wise_error.py``; ``--with-sets`` runs the whole battery with its
sets). One JSON line per seed is appended to ``--out`` so a run can stop and resume.
``--table`` prints the rates with 95% Clopper-Pearson intervals.

Seeds 1-20 are shown, not scored; the scored seeds are 21-320 (300 seeds)::

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/recovery_norway2010.py --seeds 1-320 \\
        --out recovery.jsonl
    python bench/recovery_norway2010.py --table recovery.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

from buzzpipe.synth.power import binomial_interval

# the published pattern: finding -> the verdict the published study reports
PUBLISHED = {
    "international_effect": "found",
    "regional_effect": "not_found",
    "national_effect": "not_found",
    "pipelines_stronger": "found",
    "complementarity": "not_found",
    "spillover": "not_found",
}
SHOWN = range(1, 21)  # shown in the docs, not scored


def unbounded_set(self, term, alpha=0.05, **_):
    """In place of ``WildScoreBootstrap.confidence_set``: the whole line, computed in no time."""
    from buzzpipe.estimate import wild_bootstrap as wb

    inf = float("inf")
    return wb.ConfidenceSet(str(term), alpha, [(-inf, inf)], [], math.nan)


def _no_sets() -> None:
    """Skip the bootstrap's test-inversion confidence sets (no verdict reads them)."""
    from buzzpipe.estimate import wild_bootstrap as wb

    wb.WildScoreBootstrap.confidence_set = unbounded_set


def _controls_model_only(frame, outcome, vcov, *, skipped=None, controls=None):
    """``fit_outcome_models`` for the verdicts: the shared estimation sample of the nested
    models, as it is drawn there, and the one model every verdict builds on (with controls)."""
    from buzzpipe.results.vocabulary import ModelName
    from buzzpipe.study import models

    specifications = models.main_specifications(frame, outcome, controls)
    nested = [spec for spec in specifications if models.is_nested(spec.name)]
    sample = models.estimation_sample(frame, nested)
    spec = next(spec for spec in specifications if spec.name == ModelName.CONTROLS)
    return sample, {spec.name: (spec, models.fit_model(spec.formula, sample, spec.family, vcov))}


@contextlib.contextmanager
def lean() -> Iterator[None]:
    """``run_study`` without the parts no verdict of the primary family reads (restored after):
    the models other than the one with controls, the bootstrap's confidence sets (of
    coefficients and of the pipelines difference), the
    region-clustered refits, the probability changes and marginal effects, the pipelines
    difference against national partners where the regional one is there, the by-region slopes
    model, partner-type tests and the comparison across outcomes. The counterfactuals are
    switched off by ``scenarios=()``. ``tests/study/test_family_wise_error.py`` checks that the
    verdicts do not change."""
    from buzzpipe.estimate import wild_bootstrap as wb
    from buzzpipe.study import battery, heterogeneity, pipelines_vs_buzz, sensitivity

    fit_and_record = heterogeneity._fit_and_record
    difference = sensitivity.difference_sensitivity

    def no_region_slopes(results, name, *arguments, **keywords):
        if name == heterogeneity.REGION_SLOPES:
            return None
        return fit_and_record(results, name, *arguments, **keywords)

    def regional_difference_only(formula, sample, family, global_term, local_term, *rest, **kw):
        if local_term == "breadth_national" and " breadth_regional " in f" {formula} ":
            return {}  # the rule reads international minus regional where it is there
        return difference(formula, sample, family, global_term, local_term, *rest, **kw)

    patches = [
        (battery, "fit_outcome_models", _controls_model_only),
        (wb.WildScoreBootstrap, "confidence_set", unbounded_set),
        (wb.WildScoreBootstrap, "restriction_confidence_set", unbounded_set),
        (sensitivity, "region_cluster_terms", lambda *_, **__: {}),
        (sensitivity, "difference_sensitivity", regional_difference_only),
        (pipelines_vs_buzz, "BINARY_FAMILIES", ()),
        (heterogeneity, "_fit_and_record", no_region_slopes),
        (battery, "marginal_effects", lambda *_, **__: {}),
        (battery, "partner_type_tests", lambda *_, **__: None),
        (battery, "compare_across_outcomes", lambda *_, **__: None),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def run(
    seeds: list[int],
    out: Path,
    preset: str,
    overrides: dict | None = None,
    lean_run: bool = True,
) -> None:
    """Each seed's verdict battery (:func:`lean` unless ``lean_run`` is false) appended to
    ``out``; seeds already there are skipped."""
    with lean() if lean_run else contextlib.nullcontext():
        _run(seeds, out, preset, overrides)


def _run(seeds: list[int], out: Path, preset: str, overrides: dict | None) -> None:
    from buzzpipe.study.battery import run_study
    from buzzpipe.synth import synthesize

    done = set()
    if out.exists():
        done = {json.loads(line)["seed"] for line in out.read_text().splitlines() if line}
    for seed in seeds:
        if seed in done:
            continue
        start = time.perf_counter()
        survey = synthesize(preset, seed, overrides=overrides)
        results = run_study(survey, outcomes=["product"], seed=seed, scenarios=())
        record = {
            "seed": seed,
            "preset": preset,
            **({"overrides": overrides} if overrides else {}),
            "seconds": round(time.perf_counter() - start, 2),
            "verdicts": {
                v.finding.value: {
                    "state": v.verdict.value,
                    "p": v.p_value,
                    "p_adjusted": v.p_adjusted,
                    "inference": None if v.inference is None else v.inference.kind.value,
                }
                for v in results.verdicts
            },
        }
        with out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def table(path: Path, scored_from: int = 21) -> str:
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    scored = [r for r in records if r["seed"] >= scored_from]
    lines = [
        f"Scored seeds: {len(scored)} (seeds >= {scored_from}); mean "
        f"{sum(r['seconds'] for r in scored) / max(len(scored), 1):.1f} s per seed.",
        "",
        "| finding | published | verdict = published (Holm-adjusted, the rule) | 95% interval "
        "| the same read from the unadjusted p at 5% | 95% interval |",
        "|---|---|---|---|---|---|",
    ]
    for finding, published in PUBLISHED.items():
        n = len(scored)
        matches = sum(r["verdicts"][finding]["state"] == published for r in scored)
        if published == "found":  # the rule's own p (two-sided), before the adjustment
            raw = sum((r["verdicts"][finding]["p"] or 1.0) < 0.05 for r in scored)
        else:
            raw = sum((r["verdicts"][finding]["p"] or 1.0) >= 0.05 for r in scored)
        lines.append(
            f"| {finding} | {published.replace('_', ' ')} | {rate_cells(matches, n)} "
            f"| {rate_cells(raw, n)} |"
        )
    shown = shown_table(records, list(PUBLISHED))
    if shown:
        lines += ["", "Seeds 1-20 (shown, not scored): verdicts under the rule", "", shown]
    return "\n".join(lines)


def rate_cells(count: int, n: int, digits: int = 3, separator: str = " | ") -> str:
    """A rate as the recovery tables print it: "k/n = rate" and its 95% Clopper-Pearson
    interval (``synth.power.binomial_interval``), in two table cells by default."""
    low, high = binomial_interval(count, n)
    return f"{count}/{n} = {count / n:.{digits}f}{separator}[{low:.{digits}f}, {high:.{digits}f}]"


def shown_table(records: list[dict], findings: list[str]) -> str:
    """The seeds shown, not scored (1-20), one row each: every finding's verdict under the rule
    and its unadjusted p (empty when none of the records is a shown seed)."""
    shown = sorted((r for r in records if r["seed"] in SHOWN), key=lambda r: r["seed"])
    if not shown:
        return ""
    lines = ["| seed | " + " | ".join(findings) + " |", "|---" * (len(findings) + 1) + "|"]
    for record in shown:
        cells = []
        for finding in findings:
            verdict = record["verdicts"][finding]
            p = "no p" if verdict["p"] is None else f"{verdict['p']:.3f}"
            cells.append(f"{verdict['state'].replace('_', ' ')} ({p})")
        lines.append(f"| {record['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-320")
    parser.add_argument("--out", type=Path, default=Path("recovery.jsonl"))
    parser.add_argument("--preset", default="norway2010")
    parser.add_argument("--with-sets", action="store_true")
    parser.add_argument("--table", type=Path)
    arguments = parser.parse_args()
    if arguments.table:
        print(table(arguments.table))
        return
    first, _, last = arguments.seeds.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    if not arguments.with_sets:
        _no_sets()
    run(seeds, arguments.out, arguments.preset, lean_run=not arguments.with_sets)


if __name__ == "__main__":
    main()
