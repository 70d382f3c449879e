"""Calibration by simulation: find the generating values that make a preset meet its targets.

Targets (in the preset's ``[calibration.*]``): shares of firms with a partner at each scale, shares
of product, process and new-to-market innovators, and the mean over seeds, at the preset's N, of
the named specification's odds ratio on ``breadth_international`` (mean of exp(coefficient)). The
named specification is the study's controls model, measured openness included
(``specification.py``); the record also gives the mean of the specification without openness.
Calibrated values: the collaboration scale shifts, the three outcome intercepts and the product
coefficient on international breadth. Every evaluation uses the same seeds (common random
numbers), so the map from values to simulated targets is smooth and Newton steps with a Jacobian
measured by finite differences converge.

Run: ``python -m buzzpipe.synth.calibrate PRESET [--write]`` or ``buzzpipe synth --calibrate``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from buzzpipe import __version__
from buzzpipe.atomic_write import write_text
from buzzpipe.survey import schema
from buzzpipe.synth.generate import (
    INTERNATIONAL,
    NATIONAL,
    REGIONAL,
    GeneratingParameters,
    draw_block,
    survey_cell_shocks,
)
from buzzpipe.synth.preset import Preset, load_preset, render_value, rewrite_calibrated
from buzzpipe.synth.specification import fit_named_specification, measured_breadth

BREADTH_INTERNATIONAL = schema.breadth_column("international")
SHARE_NAMES = (
    "any_regional",
    "any_national",
    "any_international",
    "product",
    "process",
    "new_to_market",
)


@dataclass(frozen=True)
class MonteCarloSummary:
    """Fits of the named specification over seeds, and shares pooled over all drawn firms."""

    firms: int
    names: list[str]
    coefficients: np.ndarray  # seeds x terms
    z_statistics: np.ndarray  # seeds x terms, robust
    shares: dict[str, float]

    @property
    def seeds(self) -> int:
        return self.coefficients.shape[0]

    def mean_odds_ratio(self, term: str = BREADTH_INTERNATIONAL) -> float:
        return float(np.exp(self.coefficients[:, self.names.index(term)]).mean())

    def odds_ratio_monte_carlo_error(self, term: str = BREADTH_INTERNATIONAL) -> float:
        odds_ratios = np.exp(self.coefficients[:, self.names.index(term)])
        return float(odds_ratios.std(ddof=1) / math.sqrt(self.seeds))

    def mean_coefficient(self, term: str) -> float:
        return float(self.coefficients[:, self.names.index(term)].mean())

    def rejection_rate(self, term: str, critical: float = 1.959963984540054) -> float:
        """Share of seeds whose robust two-sided test rejects 'coefficient = 0' at 5%."""
        return float((np.abs(self.z_statistics[:, self.names.index(term)]) > critical).mean())


def simulate(
    preset: Preset,
    seeds: Sequence[int],
    *,
    firms: int | None = None,
    extra_terms: tuple[str, ...] = (),
    fit: bool = True,
    openness: bool = True,
) -> MonteCarloSummary:
    """Draw one survey per seed (as ``generate`` would) and fit the named specification to each
    (``fit=False``: shares only; ``openness=False``: the specification without openness)."""
    parameters = GeneratingParameters.from_preset(preset)
    n = int(firms if firms is not None else preset["survey.firms"])
    coefficients, z_statistics = [], []
    totals = dict.fromkeys(SHARE_NAMES, 0.0)
    names: list[str] = []
    with threadpool_limits(limits=1):
        for seed in seeds:
            # The first block of a survey, exactly as iter_blocks draws it (n <= BLOCK_FIRMS).
            stream = np.random.SeedSequence(seed).spawn(1)[0]
            block = draw_block(
                parameters,
                n,
                np.random.default_rng(stream),
                first_external_id=n + 1,
                cell_shocks=survey_cell_shocks(parameters, seed),
            )
            if fit:
                logit = fit_named_specification(block, parameters, extra_terms, openness=openness)
                names = logit.names
                coefficients.append(logit.params)
                z_statistics.append(logit.params / np.sqrt(np.diag(logit.robust_cov)))
            breadth = measured_breadth(block)
            for name, scale in (
                ("any_regional", REGIONAL),
                ("any_national", NATIONAL),
                ("any_international", INTERNATIONAL),
            ):
                totals[name] += float((breadth[:, scale] > 0).sum())
            for outcome in ("product", "process", "new_to_market"):
                totals[outcome] += float(block.outcomes[outcome].sum())
    drawn = n * len(seeds)
    return MonteCarloSummary(
        firms=n,
        names=names,
        coefficients=np.array(coefficients),
        z_statistics=np.array(z_statistics),
        shares={name: total / drawn for name, total in totals.items()},
    )


# (calibrated key, entry within a table value or None, target key, simulated measure)
COLLABORATION_TARGETS = tuple(
    (
        "collaboration.scale_shift",
        scale,
        f"calibration.target_any_{scale}",
        f"any_{scale}",
    )
    for scale in schema.SCALES
)
OUTCOME_TARGETS = (
    ("outcomes.product.intercept", None, "calibration.target_product", "product"),
    (
        "outcomes.product.breadth_international",
        None,
        "calibration.target_odds_ratio",
        "odds_ratio",
    ),
    ("outcomes.process.intercept", None, "calibration.target_process", "process"),
    ("outcomes.new_to_market.intercept", None, "calibration.target_new_to_market", "new_to_market"),
)
CALIBRATED = COLLABORATION_TARGETS + OUTCOME_TARGETS


def _logit(share: float) -> float:
    share = min(max(share, 1e-9), 1 - 1e-9)
    return math.log(share / (1 - share))


@dataclass
class CalibrationOutcome:
    """Calibrated values, the final simulation, and how the search went."""

    preset: Preset
    values: dict[str, object]
    summary: MonteCarloSummary
    iterations: int
    converged: bool
    # The same seeds fitted without openness (issue 3's wording): reported, not a target.
    summary_without_openness: MonteCarloSummary | None = None

    def record(self) -> dict[str, object]:
        """The [calibration_result] table written into the preset."""
        s = self.summary
        record: dict[str, object] = {
            "buzzpipe_version": __version__,
            "seeds": s.seeds,
            "firms_per_seed": s.firms,
            "iterations": self.iterations,
            "converged": self.converged,
            "mean_odds_ratio_breadth_international": round(s.mean_odds_ratio(), 5),
            "monte_carlo_error_odds_ratio": round(s.odds_ratio_monte_carlo_error(), 5),
        }
        if self.summary_without_openness is not None:
            without = self.summary_without_openness
            record["mean_odds_ratio_breadth_international_without_openness"] = round(
                without.mean_odds_ratio(), 5
            )
            record["monte_carlo_error_odds_ratio_without_openness"] = round(
                without.odds_ratio_monte_carlo_error(), 5
            )
        for scale in schema.SCALES:
            term = schema.breadth_column(scale)
            record[f"mean_coefficient_{term}"] = round(s.mean_coefficient(term), 5)
        for name in SHARE_NAMES:
            record[f"share_{name}"] = round(s.shares[name], 5)
        return record


def _residuals(preset: Preset, summary: MonteCarloSummary, targets: tuple) -> np.ndarray:
    """Distance to each target: logit scale for shares, log scale for the mean odds ratio."""
    residuals = []
    for _, _, target_key, measure in targets:
        if measure == "odds_ratio":
            residuals.append(math.log(summary.mean_odds_ratio()) - math.log(preset[target_key]))
        else:
            residuals.append(_logit(summary.shares[measure]) - _logit(preset[target_key]))
    return np.array(residuals)


def _read(preset: Preset, targets: tuple) -> np.ndarray:
    return np.array(
        [preset[key][entry] if entry else preset[key] for key, entry, _, _ in targets],
        dtype=float,
    )


def _with(preset: Preset, targets: tuple, x: np.ndarray) -> Preset:
    values: dict[str, object] = {}
    for (key, entry, _, _), value in zip(targets, x, strict=True):
        value = round(float(value), 6)
        if entry:
            table = dict(values.get(key, preset[key]))
            table[entry] = value
            values[key] = table
        else:
            values[key] = value
    return preset.with_values(values, origin="calibration")


def _newton(
    preset: Preset,
    targets: tuple,
    evaluate: Callable[[Preset], MonteCarloSummary],
    measure_jacobian: Callable[[Preset], np.ndarray],
    tolerance: Callable[[MonteCarloSummary], np.ndarray],
    max_iterations: int,
    progress: Callable[[str], None] | None,
) -> tuple[Preset, MonteCarloSummary, int, bool]:
    """Newton steps with a Jacobian measured by finite differences, measured again wherever a
    step fails to halve the largest residual, until every residual is within tolerance."""
    x = _read(preset, targets)
    summary = evaluate(preset)
    residual = _residuals(preset, summary, targets)
    jacobian = None  # measured at the first step that needs it
    for iteration in range(max_iterations + 1):
        converged = bool(np.all(np.abs(residual) < tolerance(summary)))
        if progress:
            progress(
                f"  step {iteration}: "
                + ", ".join(
                    f"{t[3]} off by {r:+.5f}" for t, r in zip(targets, residual, strict=True)
                )
            )
        if converged or iteration == max_iterations:
            return preset, summary, iteration, converged
        if jacobian is None:
            jacobian = measure_jacobian(preset)
        x = x - np.linalg.solve(jacobian, residual)
        preset = _with(preset, targets, x)
        summary = evaluate(preset)
        new_residual = _residuals(preset, summary, targets)
        if np.max(np.abs(new_residual)) > 0.5 * np.max(np.abs(residual)):
            jacobian = None
        residual = new_residual
    raise AssertionError("unreachable")


def _finite_difference_jacobian(
    preset: Preset,
    targets: tuple,
    evaluate: Callable[[Preset], MonteCarloSummary],
    groups: list[list[int]],
    step: float = 0.03,
) -> np.ndarray:
    """Jacobian of residuals by forward differences; each group of values that move disjoint
    targets is perturbed together (one evaluation per group)."""
    x = _read(preset, targets)
    base = _residuals(preset, evaluate(preset), targets)
    jacobian = np.zeros((len(targets), len(targets)))
    for group in groups:
        shifted = x.copy()
        shifted[group] += step
        moved = _with(preset, targets, shifted)
        change = (_residuals(moved, evaluate(moved), targets) - base) / step
        for column in group:
            # Within a group, value `column` only moves its own target and those outside the group.
            rows = [r for r in range(len(targets)) if r not in group or r == column]
            jacobian[rows, column] = change[rows]
    return jacobian


def calibrate(
    preset: Preset,
    *,
    seeds: int | None = None,
    max_iterations: int = 8,
    progress: Callable[[str], None] | None = None,
) -> CalibrationOutcome:
    """Calibrate collaboration first (its shares do not depend on outcomes), then outcomes.

    Collaboration: the three scale shifts move only their own share, so a diagonal Jacobian is
    exact up to its slope (measured by one perturbation). Outcomes: product intercept and
    international coefficient move product share, odds ratio and new-to-market share together;
    the process intercept moves only its share. Tolerance: shares within about 0.0005, the mean
    odds ratio within a quarter of its Monte Carlo error.
    """
    seed_list = range(int(seeds if seeds is not None else preset["calibration.seeds"]))

    def draw_only(candidate: Preset) -> MonteCarloSummary:
        return simulate(candidate, seed_list, fit=False)

    def draw_and_fit(candidate: Preset) -> MonteCarloSummary:
        return simulate(candidate, seed_list)

    # On the logit scale: about 0.0005 on a share near one half, or the resolution of the pooled
    # draws where they are few (a handful of firms more or less moves a share by that much).
    pooled_firms = len(seed_list) * int(preset["survey.firms"])
    share_tolerance = max(0.0025, 1.0 / math.sqrt(pooled_firms))

    if progress:
        progress("collaboration shares")
    preset, _, steps_collaboration, converged_collaboration = _newton(
        preset,
        COLLABORATION_TARGETS,
        draw_only,
        lambda at: _finite_difference_jacobian(at, COLLABORATION_TARGETS, draw_only, [[0, 1, 2]]),
        lambda summary: np.full(3, share_tolerance),
        max_iterations,
        progress,
    )

    def outcome_tolerance(summary: MonteCarloSummary) -> np.ndarray:
        odds_ratio_tolerance = (
            0.25 * summary.odds_ratio_monte_carlo_error() / summary.mean_odds_ratio()
        )
        return np.array([share_tolerance, odds_ratio_tolerance, share_tolerance, share_tolerance])

    if progress:
        progress("outcome shares and the mean odds ratio")
    preset, summary, steps_outcomes, converged_outcomes = _newton(
        preset,
        OUTCOME_TARGETS,
        draw_and_fit,
        lambda at: _finite_difference_jacobian(
            at, OUTCOME_TARGETS, draw_and_fit, [[0], [1], [2, 3]]
        ),
        outcome_tolerance,
        max_iterations,
        progress,
    )
    values = {key: preset[key] for key, _, _, _ in CALIBRATED}
    return CalibrationOutcome(
        preset,
        values,
        summary,
        steps_collaboration + steps_outcomes,
        converged_collaboration and converged_outcomes,
        simulate(preset, seed_list, openness=False),
    )


def write_calibrated(
    outcome: CalibrationOutcome,
    source: Path,
    target: Path,
    overrides: dict[str, object] | None = None,
) -> None:
    """Write the preset file ``source`` with calibrated values and the result to ``target``.

    ``overrides``: values set on the command line (whole values by key), written too, marked
    as assumed there.
    """
    text = source.read_text(encoding="utf-8")
    # A calibrated value is as published as the targets it was calibrated to.
    targets_of: dict[str, list[str]] = {}
    for key, _, target_key, _ in CALIBRATED:
        targets_of.setdefault(key, []).append(target_key)
    appended_sources = {}
    for key, target_keys in targets_of.items():
        targets = [outcome.preset.parameters[t] for t in target_keys]
        published = all(t.source == "published" for t in targets)
        reason = "calibrated by simulation to " + "; ".join(
            f"{name} = {render_value(t.value)} ({t.reason})"
            for name, t in zip(target_keys, targets, strict=True)
        )
        appended_sources[key] = ("published" if published else "assumed", reason, True)
    values = dict(outcome.values)
    for key, value in (overrides or {}).items():
        if key not in values:
            values[key] = value
            appended_sources[key] = (
                "assumed",
                "set with --set when this preset was calibrated",
                False,
            )
    new_text = rewrite_calibrated(text, values, appended_sources, outcome.record())
    write_text(target, new_text)


def calibrate_to_file(
    preset: str | Path,
    target: Path,
    *,
    overrides: dict[str, object] | None = None,
    seeds: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CalibrationOutcome:
    """``buzzpipe synth --calibrate``: calibrate ``preset`` (with ``overrides`` set) and write
    the calibrated preset to ``target`` (a .toml file), the overrides marked as assumed."""
    from buzzpipe.errors import InputError

    target = Path(target)
    if target.suffix.lower() != ".toml":
        raise InputError("the calibrated preset is TOML", file=str(target), expected="a .toml name")
    if seeds is not None and seeds < 2:
        raise InputError("too few seeds", value=seeds, expected="--seeds of at least 2")
    loaded = load_preset(preset, overrides)
    outcome = calibrate(loaded, seeds=seeds, progress=progress)
    as_filed = load_preset(preset)
    changed = {k: loaded[k] for k in loaded.parameters if loaded[k] != as_filed[k]}
    write_calibrated(outcome, loaded.path, target, overrides=changed)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m buzzpipe.synth.calibrate PRESET [--write | --out FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m buzzpipe.synth.calibrate")
    parser.add_argument("preset", help="built-in preset name or preset TOML file")
    parser.add_argument("--seeds", type=int, default=None, help="Monte Carlo seeds per evaluation")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true", help="rewrite the preset file in place")
    where.add_argument("--out", type=Path, help="write the calibrated preset here")
    args = parser.parse_args(argv)
    preset = load_preset(args.preset)
    outcome = calibrate(preset, seeds=args.seeds, progress=lambda m: print(m, file=sys.stderr))
    for key, value in outcome.record().items():
        print(f"{key} = {value}")
    if args.write or args.out:
        assert preset.path is not None
        write_calibrated(outcome, preset.path, args.out or preset.path)
    return 0 if outcome.converged else 1


if __name__ == "__main__":
    sys.exit(main())
