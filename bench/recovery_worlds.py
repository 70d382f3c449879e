"""Recovery and family-wise error of the verdict battery in the other synthetic worlds (issue 15).

One process, seeds interleaved across worlds so that whatever fits in the time available gives
each world about the same number of seeds: for each seed, the product outcome's verdict battery
(``bench/recovery_norway2010.py``'s ``run``: the primary family of eight rules, Holm-adjusted,
bootstrap confidence sets skipped) on

- ``buzz``: regional breadth and local spill-over true, international effect null;
- ``complement``: regional x international complementarity true;
- ``null``: norway2010 with every product effect of collaboration zero (breadth terms,
  interaction, pipeline exposure) and the openness confounder removed from the product
  equation, so the study model's estimand of every breadth slope is exactly zero: a global null
  for the primary family (all eight hypotheses true);
- ``norway2010``: the preset itself, its truth the preset's (``synth/truth.py``), every finding
  of the family of eight scored (``bench/recovery_norway2010.py`` scores the published six).

One JSON line per seed and world goes to ``<out>/recovery_<world>.jsonl`` (resumable);
``--summary`` writes the per-seed CSV the docs' tables are read from (each finding's state under
the rule, f/n/o/x, and whether its unadjusted p is below 5%), which ``--table`` also reads::

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/recovery_worlds.py --seeds 21-320 --out runs/ \
        --worlds norway2010,complement,buzz
    python bench/recovery_worlds.py --summary runs/ > tests/study/data/recovery_rule.csv
    python bench/recovery_worlds.py --table tests/study/data/recovery_rule.csv
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

NULL_OVERRIDES = {
    "outcomes.product.breadth_regional": 0.0,
    "outcomes.product.breadth_national": 0.0,
    "outcomes.product.breadth_international": 0.0,
    "outcomes.product.regional_x_international": 0.0,
    "outcomes.product.pipeline_exposure": 0.0,
    "outcomes.product.openness": 0.0,
}
WORLDS = {
    "buzz": ("buzz", None),
    "complement": ("complement", None),
    "null": ("norway2010", NULL_OVERRIDES),
    "norway2010": ("norway2010", None),
}
STATES = {"found": "f", "not_found": "n", "opposite": "o", "not_assessed": "x"}
SUMMARY_HEADER = "world,seed,seconds,states,raw"


def _recovery():
    path = Path(__file__).resolve().parent / "recovery_norway2010.py"
    spec = importlib.util.spec_from_file_location("recovery_norway2010", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_verdicts(world: str) -> dict[str, str]:
    """Finding -> the verdict the world makes true (the preset's truth, ``synth/truth.py``; the
    null world: every finding of the primary family "not found")."""
    from buzzpipe.synth.preset import load_preset
    from buzzpipe.synth.truth import generating_truth

    preset, overrides = WORLDS[world]
    if overrides is NULL_OVERRIDES:
        return {}  # every finding: not_found
    expected = {finding: truth.expected for finding, truth in generating_truth(preset).items()}
    # the Ai-Norton double difference, b_ri p(1-p) + b_r b_i p(1-p)(1-2p) averaged over firms,
    # is zero without a logit interaction when b_r b_i = 0 (norway2010: b_r = 0) and nearly zero
    # in buzz (b_r b_i = 0.15 x -0.04); the interaction of complement (0.25) makes it positive
    interaction = load_preset(preset)["outcomes.product.regional_x_international"]
    expected["complementarity_probability"] = "found" if interaction > 0 else "not_found"
    return expected


def _rejects(verdict: dict) -> bool:
    return verdict["state"] in ("found", "opposite")


def _raw_rejects(verdict: dict) -> bool:
    return verdict["p"] is not None and verdict["p"] < 0.05


def _world_records(folder: Path) -> list[tuple[str, list[dict]]]:
    """Each world with a records file in ``folder``, and its records in file order."""
    worlds = []
    for world in WORLDS:
        path = folder / f"recovery_{world}.jsonl"
        if path.exists():
            records = [json.loads(line) for line in path.read_text().splitlines() if line]
            worlds.append((world, records))
    return worlds


def summary_rows(records: list[dict], world: str) -> list[dict]:
    """Per seed of one world's records: each finding's state under the rule (f found, n not
    found, o opposite, x not assessed) and whether its unadjusted p is below 5% (1/0)."""
    return [
        {
            "world": world,
            "seed": r["seed"],
            "seconds": r["seconds"],
            "findings": list(r["verdicts"]),
            "states": "".join(STATES[v["state"]] for v in r["verdicts"].values()),
            "raw": "".join("1" if _raw_rejects(v) else "0" for v in r["verdicts"].values()),
        }
        for r in records
    ]


def summary_csv(folder: Path) -> str:
    """The per-seed CSV of every world's records in ``folder`` (one findings line per world)."""
    lines = []
    for world, records in _world_records(folder):
        rows = summary_rows(records, world)
        if rows:
            lines.append(f"# {world} findings in order: {' '.join(rows[0]['findings'])}")
    lines.append(SUMMARY_HEADER)
    for world, records in _world_records(folder):
        lines += [
            f"{r['world']},{r['seed']},{r['seconds']},{r['states']},{r['raw']}"
            for r in summary_rows(records, world)
        ]
    return "\n".join(lines) + "\n"


def read_summary(path: Path) -> list[tuple[str, list[dict]]]:
    """The CSV of :func:`summary_csv` as (world, rows) in the order of WORLDS."""
    findings, rows = {}, {}
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            world, _, names = line[2:].partition(" findings in order: ")
            findings[world] = names.split()
        elif line and line != SUMMARY_HEADER:
            world, seed, seconds, states, raw = line.split(",")
            rows.setdefault(world, []).append(
                {
                    "world": world,
                    "seed": int(seed),
                    "seconds": float(seconds),
                    "findings": findings[world],
                    "states": states,
                    "raw": raw,
                }
            )
    return [(world, rows[world]) for world in WORLDS if world in rows]


def table(source: Path, scored_from: int = 21) -> str:
    """Per world and finding: how often the verdict is the world's truth (Holm-adjusted, the
    rule) and how often the unadjusted p alone is below 5%, with 95% Clopper-Pearson intervals;
    per world, the family-wise rate of false findings (any true-null finding found) adjusted
    and unadjusted. ``source``: a folder of JSONL records or the summary CSV."""
    rate_cells = _recovery().rate_cells
    if source.is_dir():
        worlds = [(w, summary_rows(r, w)) for w, r in _world_records(source)]
    else:
        worlds = read_summary(source)
    lines = []
    for world, every in worlds:
        rows = [r for r in every if r["seed"] >= scored_from]
        n = len(rows)
        if not n:
            continue
        expected = expected_verdicts(world)
        findings = rows[0]["findings"]
        seconds = sum(r["seconds"] for r in rows) / n
        lines += [
            f"World {world}: {n} seeds ({rows[0]['seed']}-{rows[-1]['seed']}), "
            f"{seconds:.1f} s per seed",
            "",
            "| finding | true verdict | verdict = truth (Holm, the rule) | 95% interval "
            "| unadjusted p < 5% | 95% interval |",
            "|---|---|---|---|---|---|",
        ]
        for h, finding in enumerate(findings):
            truth = expected.get(finding, "not_found")
            match = sum(r["states"][h] == STATES[truth] for r in rows)
            raw = sum(r["raw"][h] == "1" for r in rows)
            lines.append(
                f"| {finding} | {truth.replace('_', ' ')} | {rate_cells(match, n)} | "
                f"{rate_cells(raw, n)} |"
            )
        nulls = [h for h, f in enumerate(findings) if expected.get(f, "not_found") == "not_found"]
        false = sum(any(r["states"][h] in "fo" for h in nulls) for r in rows)
        raw_false = sum(any(r["raw"][h] == "1" for h in nulls) for r in rows)
        lines += [
            "",
            f"Family-wise rate of false findings over the {len(nulls)} true-null findings: "
            f"{rate_cells(false, n, separator=' ')} Holm-adjusted (the rule); "
            f"{rate_cells(raw_false, n, separator=' ')} unadjusted.",
            "",
        ]
    return "\n".join(lines)


def shown_tables(folder: Path) -> str:
    """Per world, seeds 1-20 (shown, not scored): each finding's verdict under the rule and its
    unadjusted p, the world's true verdicts in the header."""
    shown_table = _recovery().shown_table
    lines = []
    for world, records in _world_records(folder):
        table = shown_table(records, list(records[0]["verdicts"])) if records else ""
        if not table:
            continue
        expected = expected_verdicts(world)
        truths = ", ".join(
            f"{finding} {expected.get(finding, 'not_found').replace('_', ' ')}"
            for finding in records[0]["verdicts"]
        )
        lines += [f"World {world}, seeds 1-20 (shown, not scored); true verdicts: {truths}.", ""]
        lines += [table, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="21-320")
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument(
        "--table", type=Path, help="print the rates of the JSONL files there (or of the CSV)"
    )
    parser.add_argument("--summary", type=Path, help="print the per-seed CSV of the JSONL there")
    parser.add_argument(
        "--shown", type=Path, help="print seeds 1-20 (shown, not scored) of the JSONL files there"
    )
    arguments = parser.parse_args()
    if arguments.table:
        print(table(arguments.table))
        return
    if arguments.shown:
        print(shown_tables(arguments.shown))
        return
    if arguments.summary:
        print(summary_csv(arguments.summary), end="")
        return
    recovery = _recovery()
    recovery._no_sets()
    first, _, last = arguments.seeds.partition("-")
    worlds = arguments.worlds.split(",")
    for seed in range(int(first), int(last or first) + 1):
        for world in worlds:
            preset, overrides = WORLDS[world]
            out = arguments.out / f"recovery_{world}.jsonl"
            recovery.run([seed], out, preset, overrides)


if __name__ == "__main__":
    main()
