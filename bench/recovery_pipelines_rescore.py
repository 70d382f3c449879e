"""Rescore stored recovery runs with the pipelines-versus-buzz rule under the headline rule
(issue 16, decision 2 of the third closing note).

The recovery runs (``bench/recovery_norway2010.py``, ``bench/recovery_worlds.py``) store, per
seed, every verdict's unadjusted p. Their pipelines-versus-buzz p was the one the rule read
then (the wild bootstrap of the coefficients' difference); the rule now reads the region
bootstrap of the common-support difference (``study/common_support.py``), and issue 16's cap of
six partner types moved the Ai-Norton double difference's p slightly. No other rule's p depends
on either, so each seed's survey is drawn again (``synthesize(preset, seed)``, as the runs drew
it), only the controls model, the common-support difference, its bootstrap and the
complementarity models are computed (as ``run_study`` computes them, seed = the study seed of
the run), the two stored p-values replaced, and the family Holm-adjusted again. ``--check N``
runs the whole study on the first N seeds and compares every verdict's p with the stored one
(the rescored one for the two rules).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python bench/recovery_pipelines_rescore.py \\
        STORED.jsonl --out RESCORED.jsonl [--check 2]

The output has the stored records' layout (``bench/recovery_worlds.py --table`` and
``bench/recovery_norway2010.py --table`` read it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from buzzpipe import defaults
from buzzpipe.estimate.multiple_testing import holm
from buzzpipe.results import StudyResults
from buzzpipe.study.common_support import compare_on_common_support, first_partner_bootstrap
from buzzpipe.study.complementarity import assess_complementarity
from buzzpipe.study.models import (
    PRIMARY_INFERENCE,
    control_terms,
    fit_outcome_models,
    inference_of,
)
from buzzpipe.study.verdicts import (
    ALPHA,
    VERDICT_RULES,
    Finding,
    _read,
    decide,
    decision_p_value,
)
from buzzpipe.synth import synthesize

RESCORED = (Finding.PIPELINES_STRONGER, Finding.COMPLEMENTARITY_PROBABILITY)


def readings(preset: str, seed: int, overrides: dict | None) -> dict:
    """The pipelines and the Ai-Norton rules' estimates on one seed's survey:
    finding -> (rule, path read, Estimate)."""
    frame = synthesize(preset, seed, overrides=overrides).analysis_frame()
    sample, fits = fit_outcome_models(frame, "product", PRIMARY_INFERENCE)
    spec, fitted = fits["controls"]
    controls, _ = control_terms(sample)
    results = StudyResults()
    inference = inference_of(PRIMARY_INFERENCE)
    compare_on_common_support(
        results, "product", fitted, sample, controls, spec.family, PRIMARY_INFERENCE, inference
    )
    first_partner_bootstrap(
        results, "product", fitted, sample, spec.family, seed, defaults.WILD_BOOTSTRAP_DRAWS
    )
    assess_complementarity(
        results, "product", sample, controls, spec.family, PRIMARY_INFERENCE, inference
    )
    found = {}
    for rule in VERDICT_RULES:
        if rule.finding in RESCORED:
            _, path, estimate = _read(results, rule, "product")
            found[rule.finding.value] = (rule, path, estimate)
    return found


def rescore(record: dict) -> dict:
    found = readings(record["preset"], record["seed"], record.get("overrides"))
    verdicts = {name: dict(value) for name, value in record["verdicts"].items()}
    for name, (rule, path, estimate) in found.items():
        verdicts[name].update(
            p=decision_p_value(estimate, rule.decision),
            inference=estimate.inference.kind.value,
            quantity=path,
            estimate=estimate.estimate,
        )
    names = [name for name, v in verdicts.items() if v["p"] is not None and not math.isnan(v["p"])]
    adjusted = holm([verdicts[name]["p"] for name in names])
    for name, value in zip(names, adjusted, strict=True):
        verdicts[name]["p_adjusted"] = float(value)
    for name, (rule, _, estimate) in found.items():
        state = decide(estimate, rule.decision, rule.threshold, verdicts[name]["p_adjusted"])
        verdicts[name]["state"] = state.value
    for name in names:  # the others' states under their new adjusted p (threshold 5%)
        if name in found:
            continue
        rejected = verdicts[name]["p_adjusted"] < ALPHA
        if not rejected:
            verdicts[name]["state"] = "not_found"
        elif verdicts[name]["state"] == "not_found":  # rejected now: its sign was not stored
            verdicts[name]["state"] = "rejected_sign_unknown"
    return {**record, "verdicts": verdicts, "rescored": "pipelines rule: region bootstrap"}


def check(record: dict) -> list[str]:
    """Differences between a fresh whole study's p-values and the stored ones (the rescored
    ones for the rescored rules)."""
    from buzzpipe.study.battery import run_study

    survey = synthesize(record["preset"], record["seed"], overrides=record.get("overrides"))
    results = run_study(survey, outcomes=["product"], seed=record["seed"], scenarios=())
    rescored = rescore(record)
    problems = []
    for verdict in results.verdicts:
        stored = record["verdicts"][verdict.finding.value]["p"]
        if verdict.finding in RESCORED:
            stored = rescored["verdicts"][verdict.finding.value]["p"]
        if not math.isclose(stored, verdict.p_value, rel_tol=1e-9, abs_tol=1e-12):
            problems.append(
                f"seed {record['seed']} {verdict.finding}: {stored} != {verdict.p_value}"
            )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stored", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--check", type=int, default=0)
    arguments = parser.parse_args()
    records = [json.loads(line) for line in arguments.stored.read_text().splitlines() if line]
    for record in records[: arguments.check]:
        print("\n".join(check(record)) or f"seed {record['seed']}: stored p-values reproduced")
    done = set()
    if arguments.out.exists():
        done = {json.loads(line)["seed"] for line in arguments.out.read_text().splitlines() if line}
    for record in records:
        if record["seed"] in done:
            continue
        with arguments.out.open("a") as handle:
            handle.write(json.dumps(rescore(record)) + "\n")


if __name__ == "__main__":
    main()
