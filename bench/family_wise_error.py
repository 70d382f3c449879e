"""Family-wise error of the primary verdict family under a complete and a partial null (issue 15).

The primary family is the product outcome's eight verdict rules, Holm-adjusted, as
``study/verdicts.py`` decides them. Each seed runs the study's own code path for them
(``run_study`` on the product outcome) with the parts no verdict reads switched off
(``bench/recovery_norway2010.py``'s ``lean``: the models other than the one with controls, the
confidence sets, the region-clustered refits, the probability changes and marginal effects, the
by-region slopes, and more; the counterfactuals). A test (``tests/study/test_family_wise_error.py``)
checks that the lean run gives the full run's verdicts, p-values and adjusted p-values exactly.

Worlds (norway2010's design, 1,604 firms in five city-regions, the openness confounder removed
from the product equation so that the study model's estimand of a zero slope is exactly zero):

- ``complete_null``: every product effect of collaboration zero (the three breadth slopes, the
  regional x international interaction, pipeline exposure): all eight hypotheses true
  (the same world as ``bench/recovery_worlds.py``'s ``null``);
- ``partial_null``: the same with norway2010's international slope kept (0.19): the
  international effect and pipelines-versus-buzz (international minus regional) are false
  nulls, the other six are true.

A family-wise error is a seed where any true-null finding is "found" or "opposite" under the
rule (Holm-adjusted), beside it the unadjusted rate (any true null's own p below 5%). Seeds are
interleaved across the worlds; one compact JSON line per seed and world goes to
``<out>/family_wise_error.jsonl`` (resumable)::

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/family_wise_error.py --seeds 21-2020 --out runs/
    python bench/family_wise_error.py --table runs/ [--last-seed N]
    python bench/family_wise_error.py --summary runs/ --last-seed N \\
        > tests/study/data/family_wise_error.csv
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

COLLABORATION_ZERO = {
    "outcomes.product.breadth_regional": 0.0,
    "outcomes.product.breadth_national": 0.0,
    "outcomes.product.regional_x_international": 0.0,
    "outcomes.product.pipeline_exposure": 0.0,
    "outcomes.product.openness": 0.0,
}
WORLDS: dict[str, tuple[str, dict[str, float]]] = {
    "complete_null": (
        "norway2010",
        {**COLLABORATION_ZERO, "outcomes.product.breadth_international": 0.0},
    ),
    "partial_null": ("norway2010", COLLABORATION_ZERO),
}
# the findings each world makes false (every other finding of the family is a true null)
FALSE_NULLS: dict[str, tuple[str, ...]] = {
    "complete_null": (),
    "partial_null": ("international_effect", "pipelines_stronger"),
}
ALPHA = 0.05
STATES = {"found": "f", "not_found": "n", "opposite": "o", "not_assessed": "x"}
RECORD = "family_wise_error.jsonl"


def _recovery():
    """bench/recovery_norway2010.py (bench/ is not a package: its folder goes on the path)."""
    folder = str(Path(__file__).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("recovery_norway2010")


def primary_verdicts(world: str, seed: int) -> list:
    """The primary family's verdicts (``results.verdicts``) of one seed of a world, under
    whatever ``run_study`` currently does (wrap in ``lean()`` for the lean run)."""
    from buzzpipe.study.battery import run_study
    from buzzpipe.synth import synthesize

    preset, overrides = WORLDS[world]
    survey = synthesize(preset, seed, overrides=overrides)
    return run_study(survey, outcomes=["product"], seed=seed, scenarios=()).verdicts


def record(world: str, seed: int, verdicts: list, seconds: float, code: str = "") -> dict:
    """One seed's compact record: per finding the state, the unadjusted and the adjusted p."""
    return {
        "world": world,
        "seed": seed,
        "cpu_seconds": round(seconds, 3),
        "code": code,
        "findings": [v.finding.value for v in verdicts],
        "states": "".join(STATES[v.verdict.value] for v in verdicts),
        "p": [v.p_value for v in verdicts],
        "p_adjusted": [v.p_adjusted for v in verdicts],
    }


def _code_version() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run(seeds: range, out: Path, worlds: list[str]) -> None:
    """Seeds interleaved across worlds, appended to ``out`` (seeds already there skipped)."""
    done = set()
    if out.exists():
        done = {(r["world"], r["seed"]) for r in read(out)}
    code = _code_version()
    with _recovery().lean():
        for seed in seeds:
            for world in worlds:
                if (world, seed) in done:
                    continue
                start = time.process_time()
                verdicts = primary_verdicts(world, seed)
                line = record(world, seed, verdicts, time.process_time() - start, code)
                with out.open("a") as handle:
                    handle.write(json.dumps(line) + "\n")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def errors(row: dict) -> tuple[bool, bool]:
    """(a family-wise error under the rule, one in the unadjusted p at 5%) for one seed's
    record or summary row: any true-null finding found or opposite / with p below 5%."""
    false_nulls = FALSE_NULLS[row["world"]]
    nulls = [h for h, finding in enumerate(row["findings"]) if finding not in false_nulls]
    if "states" in row and "p" in row:
        adjusted = any(row["states"][h] in "fo" for h in nulls)
        raw = any(row["p"][h] is not None and row["p"][h] < ALPHA for h in nulls)
        return adjusted, raw
    return any(row["rule"][h] == "1" for h in nulls), any(row["raw"][h] == "1" for h in nulls)


def summary_rows(records: list[dict]) -> list[dict]:
    """Per seed and world: which findings the rule rejects (found or opposite) and which have
    an unadjusted p below 5% (the stored form the slow test reads)."""
    rows = []
    for r in sorted(records, key=lambda r: (r["world"], r["seed"])):
        rows.append(
            {
                "world": r["world"],
                "seed": r["seed"],
                "findings": r["findings"],
                "rule": "".join("1" if s in "fo" else "0" for s in r["states"]),
                "raw": "".join("1" if p is not None and p < ALPHA else "0" for p in r["p"]),
            }
        )
    return rows


def summary_csv(records: list[dict]) -> str:
    rows = summary_rows(records)
    findings = rows[0]["findings"] if rows else []
    lines = [f"# findings in order: {' '.join(findings)}", "world,seed,rule,raw"]
    lines += [f"{r['world']},{r['seed']},{r['rule']},{r['raw']}" for r in rows]
    return "\n".join(lines) + "\n"


def read_summary(path: Path) -> list[dict]:
    text = path.read_text().splitlines()
    findings = text[0].split(": ", 1)[1].split()
    rows = []
    for line in text[2:]:
        world, seed, rule, raw = line.split(",")
        rows.append(
            {"world": world, "seed": int(seed), "findings": findings, "rule": rule, "raw": raw}
        )
    return rows


def counts(rows: list[dict]) -> dict[str, tuple[int, int, int]]:
    """World -> (seeds, family-wise errors under the rule, unadjusted)."""
    out = {}
    for world in WORLDS:
        mine = [r for r in rows if r["world"] == world]
        flags = [errors(r) for r in mine]
        out[world] = (len(mine), sum(a for a, _ in flags), sum(b for _, b in flags))
    return out


def bound(seeds: int, alpha: float = ALPHA) -> float:
    """alpha plus two Monte Carlo errors at ``seeds``."""
    return alpha + 2 * math.sqrt(alpha * (1 - alpha) / seeds)


def table(records: list[dict]) -> str:
    rate_cells = _recovery().rate_cells
    lines = [
        "| world | true nulls | seeds | family-wise error, Holm (the rule) | 95% interval "
        "| 5% + 2 MC errors | unadjusted | 95% interval |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for world, (n, adjusted, raw) in counts(summary_rows(records)).items():
        if not n:
            continue
        findings = records[0]["findings"]
        nulls = len([f for f in findings if f not in FALSE_NULLS[world]])
        lines.append(
            f"| {world.replace('_', ' ')} | {nulls} of {len(findings)} | {n} | "
            f"{rate_cells(adjusted, n, digits=4)} | {bound(n):.4f} | {rate_cells(raw, n)} |"
        )
    lines += [
        "",
        "| world | finding | true null | rule rejects (found or opposite) | unadjusted p < 5% |",
        "|---|---|---|---|---|",
    ]
    for world in WORLDS:
        mine = [r for r in records if r["world"] == world]
        if not mine:
            continue
        for h, finding in enumerate(mine[0]["findings"]):
            rule = sum(r["states"][h] in "fo" for r in mine)
            raw = sum(r["p"][h] is not None and r["p"][h] < ALPHA for r in mine)
            null = "no" if finding in FALSE_NULLS[world] else "yes"
            lines.append(
                f"| {world.replace('_', ' ')} | {finding} | {null} | {rule}/{len(mine)} | "
                f"{raw}/{len(mine)} |"
            )
    cpu = [r["cpu_seconds"] for r in records]
    lines += ["", f"CPU time per seed and world: mean {sum(cpu) / len(cpu):.2f} s."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="21-2020")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--table", type=Path, help="print the rates of the records there")
    parser.add_argument("--summary", type=Path, help="print the per-seed summary CSV")
    parser.add_argument(
        "--last-seed", type=int, help="with --table or --summary: only the seeds up to this one"
    )
    arguments = parser.parse_args()
    for folder, show in ((arguments.table, table), (arguments.summary, summary_csv)):
        if folder:
            records = read(folder / RECORD)
            if arguments.last_seed is not None:
                records = [r for r in records if r["seed"] <= arguments.last_seed]
            print(show(records), end="\n" if show is table else "")
            return
    first, _, last = arguments.seeds.partition("-")
    arguments.out.mkdir(parents=True, exist_ok=True)
    run(
        range(int(first), int(last or first) + 1),
        arguments.out / RECORD,
        arguments.worlds.split(","),
    )


if __name__ == "__main__":
    main()
