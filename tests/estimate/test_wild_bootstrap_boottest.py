"""The wild score bootstrap as Stata users know it: boottest's printed probit result on nlsw88.

Data and log ship with boottest's public repository (data/boottest/SOURCE.md): Stata's
``probit c_city tenure wage ttl_exp collgrad, cluster(industry)`` then ``boottest tenure``
(score bootstrap, Rademacher weights, null imposed, 999 random draws) prints z = 0.2980 and
Prob>|z| = 0.7708 (Mata) / 0.7748 (Julia). boottest applies no G/(G-1) factor after ML models
unless ``small`` is given and counts |t*| > |t|; ``convention="boottest"`` does the same.
"""

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap

DATA = Path(__file__).parent / "data" / "boottest"
TERMS = ["tenure", "wage", "ttl_exp", "collgrad", "_cons"]


def boottest_log() -> dict:
    """What the log prints: the restricted fit's coefficients, z and the p-values."""
    text = (DATA / "unit_tests_log_excerpt.txt").read_text()
    statistics = [float(v) for v in re.findall(r"^\s+z =\s+(-?[\d.]+)$", text, re.M)]
    p_values = [float(v) for v in re.findall(r"Prob>\|z\| =\s+([\d.]+)", text)]
    restricted = {}
    for name in TERMS[1:]:
        match = re.search(rf"^\s+{name} \|\s+(-?[\d.]+)\s", text, re.M)
        restricted[name] = float(match.group(1))
    return {"statistics": statistics, "p_values": p_values, "restricted": restricted}


def nlsw88_path() -> Path | None:
    """Where nlsw88.dta is: ``BUZZPIPE_NLSW88`` if set, else the copy beside the log; None
    when absent (its redistribution terms are undecided, SOURCE.md, so a checkout may lack it
    and fetch it at test time)."""
    override = os.environ.get("BUZZPIPE_NLSW88")
    path = Path(override) if override else DATA / "nlsw88.dta"
    return path if path.is_file() else None


def test_a_missing_data_set_is_found_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("BUZZPIPE_NLSW88", str(tmp_path / "nlsw88.dta"))
    assert nlsw88_path() is None
    (tmp_path / "nlsw88.dta").write_bytes(b"")
    assert nlsw88_path() == tmp_path / "nlsw88.dta"


@pytest.fixture(scope="module")
def nlsw88():
    path = nlsw88_path()
    if path is None:
        pytest.skip(
            "nlsw88.dta is absent: fetch test/nlsw88.dta of github.com/droodman/boottest "
            "(commit a67e4f2, see data/boottest/SOURCE.md) into tests/estimate/data/boottest/ "
            "or point BUZZPIPE_NLSW88 at it"
        )
    data = pd.read_stata(path)
    sample = data[["c_city", "tenure", "wage", "ttl_exp", "collgrad", "industry"]].dropna()
    X = np.column_stack(
        [
            sample["tenure"],
            sample["wage"],
            sample["ttl_exp"],
            (sample["collgrad"] == "college grad").astype(float),
            np.ones(len(sample)),
        ]
    ).astype(float)
    y = sample["c_city"].to_numpy(dtype=float)
    clusters = sample["industry"].cat.codes.to_numpy()
    return X, y, clusters


def bootstrap(nlsw88, **options):
    X, y, clusters = nlsw88
    return WildScoreBootstrap(
        X, y, clusters, family="probit", names=TERMS, weight_type="rademacher", **options
    )


def test_log_excerpt_reads_as_expected():
    log = boottest_log()
    assert log["statistics"] == [0.2980, 0.2980]
    assert log["p_values"] == [0.7708, 0.7748]


def test_sample_and_restricted_fit_match_stata(nlsw88):
    X, _, clusters = nlsw88
    assert X.shape[0] == 2217 and len(np.unique(clusters)) == 12  # "Number of obs = 2,217"
    test = bootstrap(nlsw88, draws=4096).test("tenure")
    for name, stata in boottest_log()["restricted"].items():
        # Stata prints 7 significant digits
        assert test.restricted_params[TERMS.index(name)] == pytest.approx(stata, abs=6e-8)


def test_statistic_equals_boottest_under_its_conventions(nlsw88):
    log = boottest_log()
    boottest = bootstrap(nlsw88, draws=999, seed=1, convention="boottest").test("tenure")
    assert boottest.small_sample is False and boottest.tie_rule == "strict"
    assert round(boottest.statistic, 4) == log["statistics"][0]
    # buzzpipe's default keeps G/(G-1): the same statistic over sqrt(12/11)
    default = bootstrap(nlsw88, draws=999, seed=1).test("tenure")
    assert default.statistic * math.sqrt(12 / 11) == pytest.approx(boottest.statistic, rel=1e-12)
    # the factor scales every draw alike: same p-value with the same draws and tie rule
    assert (
        default.p_value
        == bootstrap(nlsw88, draws=999, seed=1, small_sample=False).test("tenure").p_value
    )


def test_p_value_agrees_with_boottests_random_draws(nlsw88):
    """All 2^12 = 4,096 Rademacher vectors enumerated: the exact p of boottest's rule.

    boottest's printed p-values come from 999 random draws each (Monte Carlo s.e. about
    sqrt(p(1-p)/999) = 0.013): each must be within three of those errors of the exact value.
    """
    exact = bootstrap(nlsw88, draws=4096, convention="boottest").test("tenure")
    inclusive = bootstrap(nlsw88, draws=4096).test("tenure")
    assert exact.enumerated and exact.n_draws == 4096
    # the rules differ by the two constant vectors (+-1), which tie t(1) by construction
    assert inclusive.p_value - exact.p_value == pytest.approx(2 / 4096, abs=1e-12)
    error = math.sqrt(exact.p_value * (1 - exact.p_value) / 999)
    for printed in boottest_log()["p_values"]:
        assert abs(printed - exact.p_value) < 3 * error
