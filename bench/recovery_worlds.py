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
  for the primary family (all eight hypotheses true).

One JSON line per seed and world goes to ``<out>/recovery_<world>.jsonl`` (resumable)::

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/recovery_worlds.py --seeds 21-320 --out bench/
    python bench/recovery_worlds.py --table bench/
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
}


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


def table(folder: Path, scored_from: int = 21) -> str:
    """Per world and finding: how often the verdict is the world's truth (Holm-adjusted, the
    rule) and how often the unadjusted p alone is below 5%, with 95% Clopper-Pearson intervals;
    per world, the family-wise rate of false findings (any true-null finding found) adjusted
    and unadjusted."""
    rate_cells = _recovery().rate_cells
    lines = []
    for world, every in _world_records(folder):
        records = [r for r in every if r["seed"] >= scored_from]
        n = len(records)
        if not n:
            continue
        expected = expected_verdicts(world)
        findings = list(records[0]["verdicts"])
        seconds = sum(r["seconds"] for r in records) / n
        lines += [
            f"World {world}: {n} seeds ({records[0]['seed']}-{records[-1]['seed']}), "
            f"{seconds:.1f} s per seed",
            "",
            "| finding | true verdict | verdict = truth (Holm, the rule) | 95% interval "
            "| unadjusted p < 5% | 95% interval |",
            "|---|---|---|---|---|---|",
        ]
        for finding in findings:
            truth = expected.get(finding, "not_found")
            match = sum(r["verdicts"][finding]["state"] == truth for r in records)
            raw = sum(_raw_rejects(r["verdicts"][finding]) for r in records)
            lines.append(
                f"| {finding} | {truth.replace('_', ' ')} | {rate_cells(match, n)} | "
                f"{rate_cells(raw, n)} |"
            )
        nulls = [f for f in findings if expected.get(f, "not_found") == "not_found"]
        false = sum(any(_rejects(r["verdicts"][f]) for f in nulls) for r in records)
        raw_false = sum(any(_raw_rejects(r["verdicts"][f]) for f in nulls) for r in records)
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
    parser.add_argument("--table", type=Path, help="print the rates of the JSONL files there")
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
