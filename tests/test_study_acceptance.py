"""Acceptance: over 20 seeds per preset at N = 1,604, the verdicts match each preset's truth.

Stated pass rate: each (preset, finding) verdict matches the truth in at least 80% of seeds in
expectation (the presets are built for at least 80% power where an effect exists; a true "no
effect" is kept at the 5% test's 95%). Binomial tolerance: with 20 seeds the check fails only if
the number of matches falls below the 1% quantile of Binomial(20, 0.8), i.e. 12 of 20, so a
study meeting the stated rate fails this test at most 1% of the time per finding.

The truth table lives here, in the test, never in the verdict code.
"""

import pytest
from scipy import stats

from buzzpipe.study.battery import run_study
from buzzpipe.study.verdicts import FOUND, NOT_FOUND, verdict_table
from buzzpipe.survey import Survey
from buzzpipe.synth.generate import generate
from buzzpipe.synth.preset import builtin_names, load_preset

SEEDS = range(1, 21)
PASS_RATE = 0.8
TOLERANCE = 0.01
MINIMUM_MATCHES = int(stats.binom.ppf(TOLERANCE, len(SEEDS), PASS_RATE))

TRUTH = {
    "norway2010": {
        "international_effect": FOUND,
        "regional_effect": NOT_FOUND,
        "national_effect": NOT_FOUND,
        "pipelines_stronger": FOUND,
        "complementarity": NOT_FOUND,
        "spillover": NOT_FOUND,
    },
    "buzz": {"regional_effect": FOUND, "spillover": FOUND, "international_effect": NOT_FOUND},
    "complement": {"complementarity": FOUND},
}


def verdicts_for(preset_name: str, seed: int) -> dict[str, str]:
    preset = load_preset(preset_name)
    firms, links = generate(preset, seed)
    firms = firms.drop(columns=[c for c in firms if c.startswith("collab_")])
    survey = Survey.from_frame(firms, links, home_country=preset["survey.country"])
    results = run_study(
        survey,
        outcomes=["product"],
        seed=seed,
        sensitivity=False,
        scenarios=(),
        heterogeneity=False,
    )
    return verdict_table(results.verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("preset_name", sorted(TRUTH))
def test_verdicts_match_the_presets_truth(preset_name):
    if preset_name not in builtin_names():
        pytest.skip(f"preset {preset_name!r} is not shipped yet")
    truth = TRUTH[preset_name]
    matches = dict.fromkeys(truth, 0)
    for seed in SEEDS:
        table = verdicts_for(preset_name, seed)
        for finding, expected in truth.items():
            matches[finding] += table[finding] == expected
    print(f"{preset_name}: matches of {len(SEEDS)} seeds: {matches}")
    failing = {f: m for f, m in matches.items() if m < MINIMUM_MATCHES}
    assert not failing, f"below {MINIMUM_MATCHES} of {len(SEEDS)} matches: {failing}"


def test_tolerance_is_what_the_docstring_states():
    assert MINIMUM_MATCHES == 12
    assert stats.binom.cdf(MINIMUM_MATCHES - 1, len(SEEDS), PASS_RATE) < TOLERANCE
