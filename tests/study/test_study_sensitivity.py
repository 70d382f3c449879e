"""Sensitivity of the pipelines-versus-buzz difference through the reparametrised model.

b_g g + b_l l = (b_g - b_l) g + b_l (g + l): the reparametrised fit is the same model, so its
coefficient on g and that coefficient's error must equal the lincom of the difference on the
original fit, under every covariance; then the region-clustered and wild-bootstrap columns of a
single coefficient apply to the difference.
"""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from buzzpipe.estimate.hypothesis_tests import lincom
from buzzpipe.study.models import fit_model
from buzzpipe.study.sensitivity import (
    CLUSTER_VCOV,
    difference_sensitivity,
    difference_term,
    reparametrised_difference,
)

REGIONS = ["Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand"]
FORMULA = (
    "product ~ breadth_regional + breadth_national + breadth_international"
    " + np.log(employees) + C(industry) + C(region)"
)
GLOBAL, LOCAL = "breadth_international", "breadth_regional"


def survey(seed: int, international: float, regional: float, n: int = 1604) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": pd.Categorical(rng.choice(REGIONS, n), categories=REGIONS),
            "industry": rng.choice(["manufacturing", "services", "ict"], n),
            "employees": np.exp(rng.normal(3.5, 1.0, n)).round() + 5,
            "breadth_regional": rng.binomial(6, 0.3, n),
            "breadth_national": rng.binomial(6, 0.2, n),
            "breadth_international": rng.binomial(6, 0.15, n),
        }
    )
    eta = (
        -1.0
        + regional * frame.breadth_regional
        + 0.05 * frame.breadth_national
        + international * frame.breadth_international
        + 0.1 * np.log(frame.employees / 30)
    )
    frame["product"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return frame


@pytest.mark.parametrize("vcov", ["robust", CLUSTER_VCOV])
def test_reparametrised_coefficient_equals_the_lincom_of_the_original_fit(vcov):
    frame = survey(1, international=0.3, regional=0.05)
    original = fit_model(FORMULA, frame, "logit", vcov)
    combination = lincom(original, f"{GLOBAL} - {LOCAL}")
    formula, data = reparametrised_difference(FORMULA, frame, GLOBAL, LOCAL)
    assert difference_term(GLOBAL, LOCAL) in formula and f" {LOCAL} " not in f" {formula} "
    reparametrised = fit_model(formula, data, "logit", vcov)
    assert reparametrised.params[GLOBAL] == pytest.approx(combination.estimate, rel=1e-8)
    assert reparametrised.bse[GLOBAL] == pytest.approx(combination.se, rel=1e-7)
    assert reparametrised.llf == pytest.approx(original.llf, rel=1e-12)


def test_difference_columns_match_statsmodels_and_detect_a_real_difference():
    frame = survey(2, international=0.4, regional=0.0)
    columns = difference_sensitivity(FORMULA, frame, "logit", GLOBAL, LOCAL, seed=5, draws=999)
    assert set(columns) == {"cluster", "wild_score_bootstrap"}
    clustered, wild = columns["cluster"], columns["wild_score_bootstrap"]

    # independent: statsmodels on the original model, lincom by hand, Stata's G/(G-1) factor
    groups = pd.factorize(frame["region"])[0]
    theirs = smf.logit(FORMULA, frame).fit(
        disp=0, method="newton", tol=1e-12, cov_type="cluster", cov_kwds={"groups": groups}
    )
    n, k = theirs.model.exog.shape
    contrast = pd.Series(0.0, index=theirs.params.index)
    contrast[GLOBAL], contrast[LOCAL] = 1.0, -1.0
    difference = float(contrast @ theirs.params)
    variance = float(contrast @ theirs.cov_params() @ contrast) * (n - k) / (n - 1)
    assert clustered.estimate == pytest.approx(difference, rel=1e-7)
    assert clustered.std_error == pytest.approx(np.sqrt(variance), rel=1e-6)
    assert clustered.hypothesis.kind == "difference"
    assert [term.variable for term in clustered.hypothesis.terms] == [GLOBAL, LOCAL]
    assert wild.estimate == pytest.approx(difference, rel=1e-7)
    assert wild.p_value < 0.05  # a true difference of 0.4 on the log-odds, 1,604 firms

    same = survey(3, international=0.1, regional=0.1)
    wild_same = difference_sensitivity(FORMULA, same, "logit", GLOBAL, LOCAL, seed=5, draws=999)
    assert wild_same["wild_score_bootstrap"].p_value > 0.05


def test_a_model_without_the_local_term_is_refused():
    from buzzpipe.errors import InputError

    frame = survey(4, international=0.2, regional=0.0)
    with pytest.raises(InputError):
        reparametrised_difference(FORMULA.replace("breadth_regional + ", ""), frame, GLOBAL, LOCAL)


def test_the_supermodularity_bootstrap_survives_a_separated_end_of_its_grid():
    """A 250-firm synthetic survey whose reparametrised regime model separates at the grid's
    far ends (+-40 s.e.): the batched restricted fits of the bisection start near their bracket,
    not at the last grid point's separated estimate (whose vanishing gradient Newton took for
    convergence, or from where it did not converge), so the one-sided test and its set are
    reported. The set's far piece, accepted at -40 s.e. where the statistic is constant to
    rounding (5.1598515635253 from -39 to -35 s.e., its sign flipped by rounding at one null),
    has an end found there (about -39 s.e.): undetermined, so the set reaches -inf past it."""
    from buzzpipe.results import StudyResults
    from buzzpipe.study.sensitivity import supermodularity_bootstrap
    from buzzpipe.survey import Survey
    from buzzpipe.synth import synthesize

    frame = Survey.from_frame(synthesize("norway2010", 3, firms=250).firms).analysis_frame()
    controls = ["np.log(employees)", "foreign_share", "C(industry)", "C(region)", "openness"]
    used = ["new_to_market", "regime", "employees", "foreign_share", "industry", "region"]
    sample = frame.loc[frame[[*used, "openness"]].notna().all(axis=1) & (frame.employees > 0)]
    results = StudyResults()
    supermodularity_bootstrap(results, "new_to_market", sample, controls, "logit", 1, 99)
    found = results.tests["new_to_market"]["supermodularity_wild_bootstrap"]
    assert 0.0 < found.p_value <= 1.0
    lower, upper = found.interval.segments[-1]  # one-sided (greater): a lower bound
    assert lower < found.estimate and upper == math.inf
    assert lower == -math.inf and "numerically undetermined" in found.note


@pytest.mark.parametrize("engine", ["stream", pytest.param("dask", marks=pytest.mark.slow)])
def test_single_term_bootstraps_of_two_samples_run_side_by_side_with_the_same_numbers(
    engine, monkeypatch, request
):
    """The two differences' reparametrised models are two samples: on a chunked engine their
    wild bootstraps run side by side, one round of passes (one Dask graph) for both, fewer
    rounds than the passes they make one after another, and every number the same bit for bit.
    """
    from buzzpipe.estimate import dask_engine, sources
    from buzzpipe.study.engine import StudyEngine, using
    from buzzpipe.study.sensitivity import run_side_by_side

    frame = survey(5, international=0.3, regional=0.1, n=3000)
    client = request.getfixturevalue("dask_client") if engine == "dask" else None
    owner = dask_engine.DaskSource if engine == "dask" else sources._ChunkedSource
    passes = []
    original = owner.map_designs

    def counted(self, spec, function, *args):
        passes.append(function.__name__)
        return original(self, spec, function, *args)

    def sensitivity(together: bool):
        chosen = StudyEngine(engine, _client=client)
        with using(chosen):
            pending = []
            columns = [
                difference_sensitivity(FORMULA, frame, "logit", GLOBAL, local, 5, 199, pending)
                for local in (LOCAL, "breadth_national")
            ]
            assert all("wild_score_bootstrap" not in found for found in columns)
            passes.clear()
            monkeypatch.setattr(owner, "map_designs", counted)
            if together:
                assert all(error is None for _wild, error in run_side_by_side(pending))
            else:
                for job in pending:
                    job.run()
            monkeypatch.setattr(owner, "map_designs", original)
        return columns, len(passes), chosen.merged_rounds

    looped, looped_passes, no_rounds = sensitivity(False)
    merged, merged_passes, rounds = sensitivity(True)
    assert no_rounds == 0 and 0 < rounds < looped_passes
    if engine == "dask":  # every pass of the merged run is one of its rounds' graphs
        assert merged_passes == 0
    for one, other in zip(looped, merged, strict=True):
        a, b = one["wild_score_bootstrap"], other["wild_score_bootstrap"]
        assert a.p_value is not None and a.interval is not None
        assert a == b  # p-value, statistic, interval, notes, hypothesis: every field


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))


@pytest.mark.parametrize(
    ("family", "outcome", "local"),
    [
        ("logit", "product", "breadth_regional"),
        ("logit", "product", "breadth_national"),
        ("ologit", "novelty", "breadth_regional"),
    ],
)
def test_the_derived_reparametrised_fit_is_the_refit(family, outcome, local):
    """The clustered fit of the reparametrised model derived from the original's robust fit
    (no Newton steps) equals fit_model's refit of it to 1e-12: coefficients, covariance, bread,
    cluster score sums, notes, names, and the design kept for the wild bootstrap; and the
    difference's columns built from it equal the refit's."""
    from buzzpipe.study import sensitivity
    from buzzpipe.study.models import design_of

    frame = survey(3, international=0.3, regional=0.05)
    frame["novelty"] = np.digitize(
        frame["product"] + np.random.default_rng(3).random(1604), [0.6, 1.2]
    )
    formula = FORMULA.replace("product ~", f"{outcome} ~")
    original = fit_model(formula, frame, family, "robust")
    reformulated, data = reparametrised_difference(formula, frame, GLOBAL, local)
    refit = fit_model(reformulated, data, family, CLUSTER_VCOV)
    twin = sensitivity._clustered(original, frame, None)
    assert twin is not None
    sensitivity._REPARAMETRISED.clear()
    # the cluster sums by a pass or carried from the twin's; the design built through the
    # formula (the first), then the fit's design with the sum written in (the specification
    # kept from the first)
    for given in (None, twin, twin):
        derived = sensitivity.derived_difference_fit(
            original, frame, reformulated, data, GLOBAL, local, given
        )
        assert derived is not None
        assert list(derived.params.index) == list(refit.params.index)
        assert derived.x_names == refit.x_names and derived.notes == refit.notes
        assert (derived.formula, derived.nobs, derived.n_clusters, derived.cluster_var) == (
            refit.formula,
            refit.nobs,
            refit.n_clusters,
            refit.cluster_var,
        )
        for field in ("params", "vcov", "bread", "cluster_score_sums", "bse"):
            assert _relative(getattr(refit, field), getattr(derived, field)) < 1e-12, field
        assert _relative(design_of(refit, data), design_of(derived, data)) == 0.0
    if family != "logit":
        return
    # the study's columns: the derived path (the original fit given) against the refit
    kwargs = dict(seed=5, draws=99)
    by_refit = difference_sensitivity(formula, frame, family, GLOBAL, local, **kwargs)
    by_derived = difference_sensitivity(
        formula, frame, family, GLOBAL, local, **kwargs, fitted=original, twin=twin
    )
    for kind, estimate in by_refit.items():
        other = by_derived[kind]
        assert other.note == estimate.note
        assert abs(other.estimate - estimate.estimate) < 1e-12
        assert abs(other.p_value - estimate.p_value) < 1e-10
        if estimate.std_error is not None:
            assert _relative(estimate.std_error, other.std_error) < 1e-12


def test_a_derived_fit_is_refused_where_the_refit_could_differ():
    """No derivation where the original fit left rows out or has notes, or the sum column is a
    0/1 indicator: difference_sensitivity then fits the reparametrised model itself."""
    from buzzpipe.study import sensitivity

    frame = survey(4, international=0.3, regional=0.05)
    frame.loc[frame.index[:5], "employees"] = np.nan
    original = fit_model(FORMULA, frame, "logit", "robust")
    reformulated, data = reparametrised_difference(FORMULA, frame, GLOBAL, LOCAL)
    assert (
        sensitivity.derived_difference_fit(original, frame, reformulated, data, GLOBAL, LOCAL)
        is None
    )
    frame = survey(5, international=0.3, regional=0.05)
    frame["breadth_international"] = (frame["breadth_international"] > 0).astype(float)
    frame["breadth_regional"] = 0.0
    frame.loc[frame["breadth_international"] == 0, "breadth_regional"] = (
        np.random.default_rng(5).random(int((frame["breadth_international"] == 0).sum())) < 0.3
    ).astype(float)
    formula = FORMULA.replace(" + C(industry)", "")
    original = fit_model(formula, frame, "logit", "robust")
    reformulated, data = reparametrised_difference(formula, frame, GLOBAL, LOCAL)
    assert set(np.unique(data[difference_term(GLOBAL, LOCAL)])) <= {0.0, 1.0}
    assert (
        sensitivity.derived_difference_fit(original, frame, reformulated, data, GLOBAL, LOCAL)
        is None
    )


def test_a_derived_fit_keeps_its_design_only_where_fit_model_would(monkeypatch):
    """The derived fit's design is kept for the wild bootstrap as fit_model keeps a fit's: at
    most DESIGN_KEPT numbers, so nothing firm-level outlives the call on a large sample."""
    from buzzpipe.estimate import fitting
    from buzzpipe.study import models, sensitivity

    frame = survey(6, international=0.3, regional=0.05)
    original = fit_model(FORMULA, frame, "logit", "robust")
    reformulated, data = reparametrised_difference(FORMULA, frame, GLOBAL, LOCAL)
    kept = sensitivity.derived_difference_fit(original, frame, reformulated, data, GLOBAL, LOCAL)
    assert id(kept) in models._FIT_DESIGNS
    monkeypatch.setattr(fitting, "DESIGN_KEPT", 100)
    small = sensitivity.derived_difference_fit(original, frame, reformulated, data, GLOBAL, LOCAL)
    assert small is not None and id(small) not in models._FIT_DESIGNS
    assert np.array_equal(models.design_of(small, data), models.design_of(kept, data))


def test_a_fits_clustered_twin_is_made_once_and_goes_with_the_fit():
    """The sensitivity column and the differences read one clustered twin of the controls
    fit on its sample (the same object twice); another sample gets its own; the entry goes
    when the fit goes, so no firm-level state outlives the fit."""
    import gc

    from buzzpipe.study import sensitivity

    frame = survey(7, international=0.3, regional=0.05)
    original = fit_model(FORMULA, frame, "logit", "robust")
    twin = sensitivity._clustered(original, frame, None)
    assert twin is not None and sensitivity._clustered(original, frame, None) is twin
    refit = fit_model(FORMULA, frame, "logit", CLUSTER_VCOV)
    assert _relative(refit.vcov, twin.vcov) < 1e-12 and twin.notes == refit.notes
    copy = frame.copy()
    other = sensitivity._clustered(original, copy, None)
    assert other is not twin and np.array_equal(other.vcov.to_numpy(), twin.vcov.to_numpy())
    key = id(original)
    assert key in sensitivity._TWINS
    del original, twin, other
    gc.collect()
    assert key not in sensitivity._TWINS
