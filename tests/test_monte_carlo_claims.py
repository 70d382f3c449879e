"""Every Monte Carlo test states its alternative and both probabilities, and they are right.

The Monte Carlo tests (slow or fast) declare their banded counts with ``bands.states``. Here,
without running them: each claim's band passes a correct implementation with probability at
least 0.99 and fails the stated wrong one with probability at least 0.9 (exact binomial sums),
and the test's docstring carries the claim's sentence, so the numbers a reader sees are the
computed ones.
"""

import ast
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest
from bands import (
    CORRECT_PASSES,
    WRONG_FAILS,
    Band,
    Claim,
    at_least,
    at_most,
    normalised,
    pass_probability,
    two_sided,
)
from scipy import stats

TESTS = Path(__file__).parent

# every test that counts over seeds, by file: each states its claims (tests that do not count,
# such as the duality check, are not listed); a file that states claims must be listed here
MONTE_CARLO_TESTS = {
    "estimate/test_fit_coverage.py": (
        "test_logit_interval_coverage_and_power",
        "test_cluster_errors_cover_where_classical_errors_do_not",
    ),
    "estimate/test_fieller.py": (
        "test_fieller_covers_the_true_ratio_where_the_delta_method_does_not",
    ),
    "estimate/test_multiple_testing.py": ("test_family_wise_error_rate_over_2000_seeds",),
    "estimate/test_suest.py": ("test_equality_test_has_its_nominal_size_and_power",),
    "estimate/test_wild_bootstrap.py": (
        "test_joint_test_detects_a_joint_effect_and_not_a_null_one",
    ),
    "estimate/test_monte_carlo_few_clusters.py": (
        "test_size_with_one_hundred_clusters_is_nominal_for_the_bootstrap",
        "test_size_with_one_hundred_equal_clusters_is_nominal_for_every_clustered_test",
        "test_wald_over_rejection_at_one_hundred_needs_unequal_sizes_and_a_regional_regressor",
        "test_the_bootstrap_detects_the_published_effect",
    ),
    "study/test_counterfactuals.py": (
        "test_bootstrap_intervals_cover_the_extra_innovators_of_the_true_model",
    ),
    "simulate/test_simulate_mechanisms.py": (
        "test_lock_in_pass_rates_over_many_replicates",
        "test_international_odds_ratio_detection_and_coverage_rates",
    ),
    "study/test_study_acceptance.py": ("test_verdicts_match_the_presets_truth",),
    "study/test_family_wise_error.py": (
        "test_the_rule_holds_the_family_wise_error_rate_under_a_complete_and_a_partial_null",
    ),
    "synth/test_synth_statistics.py": (
        "test_published_marginals_hold_seed_by_seed",
        "test_each_effect_a_world_turns_on_is_detected_with_80_percent_power",
        "test_the_studys_own_tests_find_what_each_world_holds",
        "test_where_an_effect_is_absent_the_test_keeps_its_size",
        "test_norway2010_local_and_national_diversity_are_negligible",
    ),
    "study/test_study_spillover.py": (
        "test_between_cells_test_holds_its_size_where_the_pooled_wald_test_does_not",
        "test_between_cells_test_detects_a_spillover",
        "test_wild_bootstrap_by_cell_by_simulation",
        "test_with_links_the_exposure_test_holds_its_size_and_detects_a_spillover",
    ),
    "study/test_spillover_placebo.py": (
        "test_the_cell_placebo_holds_its_size_and_flags_the_weaker_cell_shock",
        "test_the_links_placebo_holds_its_size_centred_and_flags_full_homophily",
    ),
}


def _module(relative: str):
    """The test module, imported on its own (its folder on sys.path, as pytest puts it there)."""
    path = TESTS / relative
    spec = importlib.util.spec_from_file_location(f"claims_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


CASES = [
    pytest.param(relative, name, id=f"{Path(relative).stem}::{name}")
    for relative, names in MONTE_CARLO_TESTS.items()
    for name in names
]


@pytest.mark.parametrize("relative, name", CASES)
def test_claims_meet_both_thresholds_and_the_docstring_states_them(relative, name):
    test = getattr(_module(relative), name)
    claims = getattr(test, "stated_claims", None)
    assert claims, f"{name} states no claim (bands.states)"
    docstring = normalised(inspect.getdoc(test) or "")
    for claim in claims:
        assert claim.wrong, f"{name}: {claim.what} names no wrong implementation"
        assert claim.correct_passes() >= CORRECT_PASSES, (name, claim.sentence())
        for wrong, probability in claim.wrong_fails().items():
            assert probability >= WRONG_FAILS, (name, wrong, claim.sentence())
        assert normalised(claim.sentence()) in docstring, (
            f"{name}'s docstring lacks the claim as computed:\n{claim.sentence()}"
        )


def test_listed_files_are_the_ones_with_claims():
    declared = set(MONTE_CARLO_TESTS)
    for path in TESTS.rglob("test_*.py"):
        relative = str(path.relative_to(TESTS))
        if path.name == Path(__file__).name:
            continue
        if "bands.states(" in path.read_text() or "@states(" in path.read_text():
            assert relative in declared, f"{relative} states claims but is not checked here"


# slow tests that count nothing over seeds, or whose count is not a rate against a stated
# wrong implementation: each with the reason it states no claim
NOT_A_RATE = {
    "survey/test_dask_measures.py::"
    "test_the_study_command_on_dask_derives_its_frame_on_the_workers": (
        "deterministic: one fixed-seed survey's results.json from `study` on dask against memory's"
    ),
    "study/test_client_reductions.py::"
    "test_the_battery_on_dask_with_no_column_on_the_client_gives_the_memory_numbers": (
        "deterministic: one fixed-seed survey's results.json on dask against memory's, 1e-10"
    ),
    "study/test_client_holds_no_column.py::"
    "test_the_study_of_a_survey_kept_on_dask_gives_the_memory_numbers": (
        "deterministic: fixed-seed surveys' results.json on dask against memory's, 1e-10"
    ),
    "study/test_client_holds_no_column.py::"
    "test_separate_estimates_by_sector_read_no_column_on_the_client": (
        "deterministic: the per-sector fallback on Dask against memory's, 1e-10"
    ),
    "study/test_memory_at_scale.py::"
    "test_the_memory_engines_study_grows_by_a_bounded_number_of_bytes_a_firm": (
        "a memory bound: peaks at two sizes of one fixed-seed survey, not a rate"
    ),
    "study/test_memory_at_scale.py::"
    "test_the_dask_client_grows_by_a_bounded_number_of_bytes_a_firm": (
        "a memory bound: the Dask client's peaks at two sizes of one fixed-seed survey, not a rate"
    ),
    "study/test_memory_at_scale.py::"
    "test_the_dask_workers_grow_by_a_bounded_number_of_bytes_a_firm": (
        "a memory bound: the Dask workers' peaks at two sizes of one fixed-seed survey, not a rate"
    ),
    "study/test_study_engines.py::test_the_study_on_dask_gives_the_memory_numbers": (
        "deterministic: one battery on Dask against the same battery in memory, to 1e-10"
    ),
    "study/test_study_engines.py::test_the_first_partner_bootstrap_on_dask_equals_memory": (
        "deterministic: the first-partner bootstrap on Dask against memory's, to 1e-10"
    ),
    "study/test_study_engines.py::"
    "test_separate_estimates_by_sector_on_dask_give_the_memory_numbers": (
        "deterministic: the per-sector fallback's subsets selected on Dask against memory's"
    ),
    "cli/test_replicate.py::test_replicate_norway2010_and_buzz_read_opposite": (
        "one end-to-end run per preset; the verdict rates are test_study_acceptance.py's"
    ),
    "cli/test_replicate.py::test_analyze_an_spss_file_and_an_edge_list_survey": (
        "one end-to-end run per input format"
    ),
    "cli/test_simulate_then_analyze.py::"
    "test_simulate_then_analyze_exits_zero_and_names_the_skipped_model": (
        "one end-to-end run of simulate then analyze"
    ),
    "simulate/test_simulate_outputs.py::test_the_norway_scenario_survey_is_analysed_end_to_end": (
        "one end-to-end analysis of a simulated survey"
    ),
    "simulate/test_simulate_policy.py::"
    "test_a_new_pipeline_raises_the_treated_firms_innovation_in_the_calibrated_world": (
        "one fixed-seed policy experiment (3 replicates, paired interval), not a rate"
    ),
    "report/test_report_schema_doc.py::"
    "test_the_schema_page_mentions_every_key_of_the_replicated_study": (
        "a documentation check on one full run"
    ),
    "results/test_golden.py::test_a_fresh_replicate_run_has_every_golden_number": (
        "one full run compared number by number with the golden results.json"
    ),
    "estimate/test_monte_carlo_few_clusters.py::"
    "test_confidence_sets_cover_exactly_when_the_test_accepts": (
        "an exact duality: the count of disagreements must be zero"
    ),
    "estimate/test_monte_carlo_few_clusters.py::"
    "test_size_with_five_city_regions_is_a_finding_not_a_pass": (
        "a zero that is exact (Rademacher's smallest p is 1/16) and the order of two rates far "
        "apart (25.1% and 5.3% over 5,000 samples)"
    ),
    "synth/test_synth_statistics.py::"
    "test_rerunning_the_calibration_reproduces_the_stored_outcome": (
        "deterministic: a re-run of the calibration"
    ),
    "synth/test_synth_statistics.py::"
    "test_mean_odds_ratio_of_the_named_specification_hits_the_target": (
        "a mean within 3 Monte Carlo errors (a z-band: a calibration on target passes with "
        "probability 0.997), not a count"
    ),
}


def _slow_tests(path: Path) -> list[str]:
    """Names of the test functions of a file marked slow (by decorator or module pytestmark)."""
    tree = ast.parse(path.read_text())
    module_slow = any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "pytestmark" for t in node.targets)
        and "slow" in ast.unparse(node.value)
        for node in tree.body
    )
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            marks = [ast.unparse(d) for d in node.decorator_list]
            if module_slow or any(m.endswith("mark.slow") for m in marks):
                names.append(node.name)
    return names


def test_every_slow_test_states_claims_or_says_why_not():
    """A slow test is a Monte Carlo claim (listed above, with its claims) or is listed with the
    reason it is not one: a new slow test cannot arrive without either."""
    claimed = {f"{f}::{name}" for f, names in MONTE_CARLO_TESTS.items() for name in names}
    missing = []
    for path in sorted(TESTS.rglob("test_*.py")):
        relative = str(path.relative_to(TESTS))
        for name in _slow_tests(path):
            node = f"{relative}::{name}"
            if node not in claimed and node not in NOT_A_RATE:
                missing.append(node)
    assert not missing, "slow tests with neither claims nor a reason:\n" + "\n".join(missing)
    for node in NOT_A_RATE:
        relative, name = node.split("::")
        assert name in _slow_tests(TESTS / relative), f"{node} is no longer a slow test"


# ---- the helper itself, against hand-computed binomial sums ---------------------------------


def test_pass_probability_is_the_binomial_sum():
    band = Band(20, 2, 5)
    by_hand = sum(stats.binom.pmf(k, 20, 0.1) for k in range(2, 6))
    assert pass_probability(band, 0.1) == pytest.approx(by_hand, rel=1e-12)
    assert pass_probability(Band(20, 0, 20), 0.3) == pytest.approx(1.0)


def test_two_sided_band_leaves_at_most_half_alpha_in_each_tail():
    for trials, rate in ((300, 0.05), (400, 0.95), (40, 0.5)):
        band = two_sided(trials, rate, alpha=0.01)
        assert stats.binom.cdf(band.low - 1, trials, rate) <= 0.005
        assert stats.binom.sf(band.high, trials, rate) <= 0.005
        # and it is the narrowest such band: one step in on either side breaks a tail
        assert stats.binom.cdf(band.low, trials, rate) > 0.005 or band.low == band.high
        assert stats.binom.sf(band.high - 1, trials, rate) > 0.005


def test_one_sided_bands():
    band = at_least(20, 0.8, alpha=0.01)
    assert band.low == 12 and band.high == 20  # the acceptance test's old rule, 12 of 20
    assert stats.binom.cdf(11, 20, 0.8) <= 0.01 < stats.binom.cdf(12, 20, 0.8)
    upper = at_most(20, 0.05, alpha=0.001)
    assert upper.low == 0 and stats.binom.sf(upper.high, 20, 0.05) <= 0.001


def test_the_audit_figures():
    """The issue's audit: the fast joint test's "at most 5 of 20 null rejections" passes a test of
    true size 20% with probability about 0.80; the acceptance test's 12 of 20 passes a 30%
    false-positive rate (match rate 0.7) with probability about 0.89."""
    assert pass_probability(Band(20, 0, 5), 0.20) == pytest.approx(0.804, abs=1e-3)
    assert pass_probability(Band(20, 12, 20), 0.70) == pytest.approx(0.887, abs=1e-3)


def test_a_claim_sentence_rounds_down():
    claim = Claim("size", Band(400, 9, 32), 0.05, (("size 10%", 0.10),))
    sentence = claim.sentence()
    assert sentence.startswith("size: 9 to 32 of 400; correct (0.05) passes with probability")
    passes = float(sentence.split("probability ")[1].split(";")[0])
    assert passes <= claim.correct_passes() < passes + 0.001
