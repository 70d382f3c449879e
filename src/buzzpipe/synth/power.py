"""Power of the study's primary tests on a preset's surveys, measured by simulation.

Issue 3 asks that each effect a contrasting preset turns on be detected with at least 80% power
at N = 1,604 by the test the study uses. Running the whole battery per seed is slow, so this
module draws each survey as ``generate`` does and fits only the models behind the verdicts, with
the fast logit of ``specification.py`` (the same formulas as ``study/models.py`` and
``study/complementarity.py``; a test checks them against the study on one survey):

- international, regional, national effect: two-sided robust 5% test of the breadth coefficient
  in the controls model (the named specification);
- pipelines stronger (the verdict's rule since issue 16): two-sided delta-method test of the
  common-support difference, the first international kind of partner (breadth 0 -> 1 for every
  firm) minus the first regional one, in probability, "found" when it is positive;
- pipelines stronger, coefficients (the rule before issue 16, now in the tests table): two-sided
  Wald test of b_international = b_regional;
- complementarity: one-sided test of b_both - b_local_only - b_global_only > 0 in the regime
  model;
- interaction: two-sided test of the regional x international breadth interaction.

Run: ``python -m buzzpipe.synth.power PRESET [--seeds N] [--first SEED]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from buzzpipe.synth.generate import GeneratingParameters, draw_block, survey_cell_shocks
from buzzpipe.synth.preset import Preset, load_preset
from buzzpipe.synth.specification import (
    first_partner_difference,
    fit_logit,
    fit_named_specification,
    fit_regime_model,
    linear_combination_z,
    named_design,
    supermodularity_z,
)

INTERACTION = "breadth_regional:breadth_international"
TWO_SIDED = float(stats.norm.isf(0.025))
ONE_SIDED = float(stats.norm.isf(0.05))
# Findings measured: verdict names of the study's rule table, and the breadth interaction test.
FINDINGS = (
    "international_effect",
    "regional_effect",
    "national_effect",
    "pipelines_stronger",
    "pipelines_stronger_coefficients",
    "complementarity",
    "interaction",
)


@dataclass(frozen=True)
class PowerSummary:
    """z statistics of each finding's test per seed, and the rates at which they are found."""

    seeds: int
    z: dict[str, np.ndarray]
    international_coefficients: np.ndarray  # controls model, per seed
    international_coefficients_without_openness: np.ndarray

    def found_rate(self, finding: str) -> float:
        """Share of seeds where the study's rule finds a positive effect at 5%."""
        z = self.z[finding]
        critical = ONE_SIDED if finding == "complementarity" else TWO_SIDED
        return float((z > critical).mean())

    def opposite_rate(self, finding: str) -> float:
        """Share of seeds where the rule rejects in the other direction at 5% (never for the
        one-sided complementarity rule, which has no 'opposite' verdict)."""
        if finding == "complementarity":
            return 0.0
        z = self.z[finding]
        return float((z < -TWO_SIDED).mean())

    def mean_odds_ratio(self, *, openness: bool = True) -> tuple[float, float]:
        """Mean exp(coefficient on breadth_international) and its Monte Carlo error."""
        coefficients = (
            self.international_coefficients
            if openness
            else self.international_coefficients_without_openness
        )
        odds_ratios = np.exp(coefficients)
        return float(odds_ratios.mean()), float(odds_ratios.std(ddof=1) / math.sqrt(self.seeds))


def binomial_interval(successes: int, trials: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of a rate."""
    low = stats.beta.ppf(0.025, successes, trials - successes + 1) if successes else 0.0
    high = stats.beta.isf(0.025, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def measure_power(
    preset: Preset, seeds: Sequence[int], *, firms: int | None = None
) -> PowerSummary:
    """Draw one survey per seed (the first block, exactly as ``generate`` draws it) and compute
    the z statistic of every finding's test."""
    parameters = GeneratingParameters.from_preset(preset)
    n = int(firms if firms is not None else preset["survey.firms"])
    z = {finding: [] for finding in FINDINGS}
    international, international_without = [], []
    with threadpool_limits(limits=1):
        for seed in seeds:
            stream = np.random.SeedSequence(seed).spawn(1)[0]
            block = draw_block(
                parameters,
                n,
                np.random.default_rng(stream),
                first_external_id=n + 1,
                cell_shocks=survey_cell_shocks(parameters, seed),
            )
            design, names, rows = named_design(block, parameters)
            controls = fit_logit(design, block.outcomes["product"][rows], names)
            for finding, term in (
                ("international_effect", "breadth_international"),
                ("regional_effect", "breadth_regional"),
                ("national_effect", "breadth_national"),
            ):
                z[finding].append(controls.z_statistic(term))
            difference, error = first_partner_difference(
                controls, design, "breadth_international", "breadth_regional"
            )
            z["pipelines_stronger"].append(difference / error)
            z["pipelines_stronger_coefficients"].append(
                linear_combination_z(
                    controls, {"breadth_international": 1.0, "breadth_regional": -1.0}
                )
            )
            z["complementarity"].append(supermodularity_z(fit_regime_model(block, parameters)))
            z["interaction"].append(
                fit_named_specification(block, parameters, (INTERACTION,)).z_statistic(INTERACTION)
            )
            international.append(controls.coefficient("breadth_international"))
            without = fit_named_specification(block, parameters, openness=False)
            international_without.append(without.coefficient("breadth_international"))
    return PowerSummary(
        seeds=len(seeds),
        z={finding: np.array(values) for finding, values in z.items()},
        international_coefficients=np.array(international),
        international_coefficients_without_openness=np.array(international_without),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print each finding's found and opposite rates with 95% intervals."""
    parser = argparse.ArgumentParser(prog="python -m buzzpipe.synth.power")
    parser.add_argument("preset", help="built-in preset name or preset TOML file")
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds")
    parser.add_argument("--first", type=int, default=40_000, help="first seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from buzzpipe.synth.preset import parse_assignment

    overrides = dict(parse_assignment(text) for text in args.set)
    preset = load_preset(args.preset, overrides or None)
    summary = measure_power(preset, range(args.first, args.first + args.seeds))
    print(f"{preset.name}: {summary.seeds} seeds from {args.first}")
    for finding in FINDINGS:
        found = round(summary.found_rate(finding) * summary.seeds)
        low, high = binomial_interval(found, summary.seeds)
        opposite = summary.opposite_rate(finding)
        print(
            f"  {finding:22s} found {found}/{summary.seeds} = {found / summary.seeds:.3f} "
            f"[{low:.3f}, {high:.3f}]  opposite {opposite:.3f}"
        )
    for openness in (True, False):
        mean, error = summary.mean_odds_ratio(openness=openness)
        label = "with openness" if openness else "without openness"
        print(f"  mean OR breadth_international ({label}): {mean:.4f} +- {error:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
