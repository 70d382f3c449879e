"""The spill-over verdict's sentence (issue 16, item 1): the identifying assumption the study
leans on, the placebo and the confounding bound in words, never a causal 'spill-over'."""

from buzzpipe.report.findings import spillover_checks


def checks(distribution: str, placebo_p: float, bound_low: float) -> str:
    results = {
        "tests": [
            {
                "id": "product/spillover_placebo",
                "p": placebo_p,
                "hypothesis": "the placebo's hypothesis",
                "distribution": distribution,
            }
        ],
        "descriptions": [
            {
                "id": "product/spillover_confounding_bound",
                "estimate": 0.25,
                "interval": [bound_low, 0.25],
            }
        ],
    }
    return spillover_checks(results, "product")


def test_without_links_the_sentence_names_the_cell_shock_and_shows_placebo_and_bound():
    text = checks("chi2", 0.003, 0.1)
    assert "only if no shock common to a region \u00d7 industry cell" in text
    assert "p = 0.003, rejected: pipelines are not placed at random" in text
    assert "of 0.250 to explain the estimate, 0.100 to bring its 95% interval to zero" in text


def test_with_links_the_sentence_names_partner_choice_and_an_interval_already_at_zero():
    text = checks("normal", 0.5, 0.0)
    assert "only if firms do not choose their local partners on an unobserved capability" in text
    assert "p = 0.500, not rejected." in text
    assert "to explain the estimate (its 95% interval already includes zero)." in text
    assert "to bring its 95% interval to zero" not in text


def test_a_file_without_placebo_or_bound_adds_nothing():
    assert spillover_checks({"tests": [], "descriptions": []}, "product") == ""
