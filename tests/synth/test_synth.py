"""Synthetic surveys: presets with provenance, the generator's schema and reproducibility, the
named-specification logit against statsmodels, calibration, and the command line."""

import hashlib
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.survey import schema
from buzzpipe.synth import generate
from buzzpipe.synth.calibrate import calibrate, simulate, write_calibrated
from buzzpipe.synth.generate import GeneratingParameters, edge_list_firms, iter_blocks
from buzzpipe.synth.preset import SCHEMA, builtin_names, load_preset, parse_assignment
from buzzpipe.synth.specification import fit_named_specification
from buzzpipe.synth.write import write_survey

SRC = Path(__file__).resolve().parents[2] / "src"
NON_GROUP = [t for t in schema.PARTNER_TYPES if t != schema.GROUP_PARTNER_TYPE]


def breadth(firms: pd.DataFrame, scale: str) -> pd.Series:
    """Breadth at a scale through the schema's names: 'yes' answers, group excluded."""
    columns = [schema.collab_column(scale, t) for t in NON_GROUP]
    return firms[columns].fillna(0).astype(int).sum(axis=1)


# ---------------------------------------------------------------- presets


def test_builtin_presets_load_and_every_parameter_names_its_source():
    assert {"norway2010", "buzz", "complement"} <= set(builtin_names())
    for name in ("norway2010", "buzz", "complement"):
        preset = load_preset(name)
        assert set(preset.parameters) == set(SCHEMA)
        for key, parameter in preset.parameters.items():
            assert parameter.source in ("published", "assumed"), key
            assert len(parameter.reason) > 10, key


def test_norway2010_states_the_published_facts():
    preset = load_preset("norway2010")
    assert preset["survey.firms"] == 1604
    assert preset["survey.regions"] == ["Oslo", "Bergen", "Stavanger", "Trondheim", "Kristiansand"]
    assert preset["calibration.target_odds_ratio"] == 1.26
    assert preset["calibration.target_any_regional"] == 0.80
    assert preset["calibration.target_any_international"] == 0.45
    assert preset["calibration.target_product"] == 0.476
    assert preset["calibration.specification"] == (
        "product ~ breadth_regional + breadth_national + breadth_international"
        " + log(employees) + foreign_share + C(industry) + C(region) + openness"
    )
    for key in ("calibration.target_odds_ratio", "calibration.target_any_regional"):
        assert preset.parameters[key].source == "published"
    # No interaction and no spill-over in Norway; both exist in the contrasting worlds.
    assert preset["outcomes.product.regional_x_international"] == 0
    assert preset["outcomes.product.pipeline_exposure"] == 0
    assert load_preset("complement")["outcomes.product.regional_x_international"] > 0
    buzz = load_preset("buzz")
    assert buzz["outcomes.product.pipeline_exposure"] > 0
    assert buzz["outcomes.product.breadth_regional"] > 0
    assert buzz["calibration.target_odds_ratio"] == 1.0


def test_a_parameter_without_provenance_is_refused(tmp_path):
    preset = tmp_path / "mine.toml"
    preset.write_text('extends = "norway2010"\n[survey.firms]\nvalue = 50\n')
    with pytest.raises(InputError, match="survey.firms.*provenance"):
        load_preset(preset)
    preset.write_text(
        'extends = "norway2010"\n[survey.firms]\nvalue = 50\nassumed = "small test"\n'
    )
    assert load_preset(preset)["survey.firms"] == 50
    assert load_preset(preset)["survey.regions"][0] == "Oslo"  # inherited


def test_overrides_replace_values_and_entries_and_are_validated():
    key, value = parse_assignment("collaboration.size_slope.regional=0.5")
    preset = load_preset("norway2010", {key: value, "survey.firms": 100})
    assert preset["collaboration.size_slope"]["regional"] == 0.5
    assert preset["collaboration.size_slope"]["national"] == 0.35
    assert preset["survey.firms"] == 100
    assert parse_assignment("survey.country=SE") == ("survey.country", "SE")
    with pytest.raises(InputError, match="unknown preset key"):
        load_preset("norway2010", {"outcomes.product.nonsense": 1})
    with pytest.raises(InputError, match="--set.*survey.region_shares.*5 numbers"):
        load_preset("norway2010", {"survey.region_shares": [0.5, 0.5]})


# ---------------------------------------------------------------- generated survey


@pytest.fixture(scope="module")
def survey():
    return generate("norway2010", seed=7)


def test_firms_follow_the_canonical_schema(survey):
    firms, links = survey
    assert len(firms) == 1604
    assert firms[schema.FIRM_ID].is_unique
    assert list(firms["region"].cat.categories)[0] == "Oslo"
    assert list(firms["industry"].cat.categories)[0] == "manufacturing"
    assert (firms["employees"] > 10).all()
    assert firms["foreign_share"].between(0, 1).all()
    assert firms["openness"].between(1, 5).all()
    for scale in schema.SCALES:
        for partner_type in schema.PARTNER_TYPES:
            column = firms[schema.collab_column(scale, partner_type)]
            assert str(column.dtype) == "Int8"
            assert set(column.dropna().unique()) <= {0, 1}
    for outcome in schema.OUTCOMES:
        assert set(firms[outcome].unique()) <= {0, 1}
    # The novelty ladder: new to the market implies a product innovation.
    assert (firms["new_to_market"] <= firms["product"]).all()
    assert tuple(links.columns) == schema.LINK_COLUMNS


def test_links_match_the_collaboration_answers(survey):
    firms, links = survey
    region_of = firms.set_index(schema.FIRM_ID)["region"].astype(str)
    own_region = links["firm_id"].map(region_of)
    abroad = links["partner_country"].astype(str) != "NO"
    same_region = links["partner_region"].astype(str) == own_region
    scale = np.select([abroad, same_region], ["international", "regional"], "national")
    observed = set(zip(links["firm_id"], scale, links["partner_type"].astype(str), strict=True))
    expected = set()
    for s in schema.SCALES:
        for t in schema.PARTNER_TYPES:
            ids = firms.loc[firms[schema.collab_column(s, t)] == 1, schema.FIRM_ID]
            expected |= {(int(i), s, t) for i in ids}
    assert observed == expected
    # Surveyed partners are other firms of the same city-region; external ids never collide.
    surveyed = links["partner_id"] <= len(firms)
    assert surveyed.any()
    assert (links.loc[surveyed, "partner_id"] != links.loc[surveyed, "firm_id"]).all()
    assert (links.loc[surveyed, "partner_id"].map(region_of) == own_region[surveyed]).all()
    assert not links.duplicated(["firm_id", "partner_id", "partner_type"]).any()


def test_same_seed_same_bytes_and_another_seed_another_survey(tmp_path):
    first = write_survey(
        load_preset("norway2010"), 11, tmp_path / "a.csv", links_path=tmp_path / "a_links.parquet"
    )
    write_survey(
        load_preset("norway2010"), 11, tmp_path / "b.csv", links_path=tmp_path / "b_links.parquet"
    )
    write_survey(load_preset("norway2010"), 12, tmp_path / "c.csv")
    digest = {
        p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest()
        for p in ("a.csv", "b.csv", "c.csv", "a_links.parquet", "b_links.parquet")
    }
    assert digest["a.csv"] == digest["b.csv"]
    assert digest["a_links.parquet"] == digest["b_links.parquet"]
    assert digest["a.csv"] != digest["c.csv"]
    assert first.firms == 1604
    # The files hold exactly what generate() returns in memory (firm-level and edge-list forms).
    firms, links = generate("norway2010", seed=11)
    buffer = io.StringIO()
    edge_list_firms(firms, "NO").to_csv(buffer, index=False)
    assert buffer.getvalue().encode() == (tmp_path / "a.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a_links.parquet"), links)
    firms_12, _ = generate("norway2010", seed=12)
    buffer = io.StringIO()
    firms_12.to_csv(buffer, index=False)
    assert buffer.getvalue().encode() == (tmp_path / "c.csv").read_bytes()


def test_streamed_blocks_make_one_survey_with_unique_ids(tmp_path):
    preset = load_preset("norway2010")
    written = write_survey(
        preset,
        3,
        tmp_path / "f.parquet",
        links_path=tmp_path / "l.csv",
        firms=1300,
        block_firms=500,
    )
    firms = pd.read_parquet(tmp_path / "f.parquet")
    links = pd.read_csv(tmp_path / "l.csv")
    assert written.firms == len(firms) == 1300 and written.links == len(links)
    assert firms[schema.FIRM_ID].tolist() == list(range(1, 1301))
    # An edge-list survey: collaboration lives in the links; the firms say their country.
    assert not [c for c in firms.columns if c.startswith("collab_")]
    assert (firms[schema.COUNTRY] == "NO").all()
    assert list(firms["region"].cat.categories) == preset["survey.regions"]
    external = links.loc[links["partner_id"] > 1300, "partner_id"]
    assert external.is_unique
    # Surveyed partners come from the firm's own block of 500.
    surveyed = links[links["partner_id"] <= 1300]
    assert ((surveyed["firm_id"] - 1) // 500 == (surveyed["partner_id"] - 1) // 500).all()
    # Streamed twice: the same bytes.
    write_survey(preset, 3, tmp_path / "g.parquet", firms=1300, block_firms=500)
    write_survey(preset, 3, tmp_path / "h.parquet", firms=1300, block_firms=500)
    assert (tmp_path / "g.parquet").read_bytes() == (tmp_path / "h.parquet").read_bytes()
    assert pd.read_parquet(tmp_path / "g.parquet")["firm_id"].is_unique


def test_the_data_layer_reads_the_synthetic_survey_as_generated():
    """Survey.from_frame derives the same breadth and pipeline exposure the generator used."""
    from buzzpipe.synth import synthesize

    preset = load_preset("buzz")
    parameters = GeneratingParameters.from_preset(preset)
    block = next(iter_blocks(preset, 21))
    frame = synthesize(preset, 21).analysis_frame()
    for s, scale in enumerate(schema.SCALES):
        assert (frame[schema.breadth_column(scale)].to_numpy() == block.breadth[:, s]).all()
    exposure = frame[schema.PIPELINE_EXPOSURE].to_numpy()
    known = block.pipeline_exposure_known
    assert (np.isnan(exposure) == ~known).all()
    assert np.allclose(exposure[known], block.pipeline_exposure[known], rtol=0, atol=1e-12)
    # The firm-level form keeps the answers and gives the same breadth.
    firm_level = synthesize(preset, 21, edge_list=False).analysis_frame()
    assert firm_level[schema.breadth_column("international")].equals(
        frame[schema.breadth_column("international")]
    )
    assert list(frame["region"].cat.categories)[0] == parameters.regions[0]


def test_dont_know_answers_become_missing():
    firms, _ = generate("norway2010", seed=1, overrides={"collaboration.dont_know_rate": 0.1})
    collab = firms[[c for c in firms.columns if c.startswith("collab_")]]
    assert collab.isna().to_numpy().mean() == pytest.approx(0.1, abs=0.01)
    none_missing, _ = generate("norway2010", seed=1)
    assert not none_missing.isna().any().any()


def test_shares_on_one_large_draw_match_the_published_marginals():
    """One draw of 120,000 firms: each calibrated share within 4 binomial standard errors (plus
    the calibration's own tolerance of 0.001)."""
    firms, _ = generate("norway2010", seed=2024, firms=120_000)
    n = len(firms)
    preset = load_preset("norway2010")
    observed = {
        "any_regional": (breadth(firms, "regional") > 0).mean(),
        "any_national": (breadth(firms, "national") > 0).mean(),
        "any_international": (breadth(firms, "international") > 0).mean(),
        "product": firms["product"].mean(),
        "process": firms["process"].mean(),
        "new_to_market": firms["new_to_market"].mean(),
    }
    for name, share in observed.items():
        target = preset[f"calibration.target_{name}"]
        tolerance = 4 * math.sqrt(target * (1 - target) / n) + 0.001
        assert abs(share - target) < tolerance, (name, share, target)
    # Region shares are the preset's (firms per city-region).
    region_share = firms["region"].value_counts(normalize=True)[preset["survey.regions"]]
    assert np.allclose(region_share, preset["survey.region_shares"], atol=0.005)


def test_a_generated_effect_shows_and_an_absent_one_does_not():
    """The generator honours its coefficients: a large regional effect appears in the fit; with
    the effect set to zero (and openness switched off, so nothing confounds) it does not."""
    base = {
        "outcomes.product.openness": 0.0,
        "outcomes.product.breadth_international": 0.0,
    }
    preset = load_preset("norway2010", {**base, "outcomes.product.breadth_regional": 0.4})
    parameters = GeneratingParameters.from_preset(preset)
    block = next(iter_blocks(preset, 5, firms=60_000))
    fit = fit_named_specification(block, parameters)
    assert abs(fit.coefficient("breadth_regional") - 0.4) < 4 * math.sqrt(fit.robust_cov[1, 1])
    null = load_preset("norway2010", {**base, "outcomes.product.breadth_regional": 0.0})
    block = next(iter_blocks(null, 5, firms=60_000))
    fit = fit_named_specification(block, GeneratingParameters.from_preset(null))
    assert abs(fit.z_statistic("breadth_regional")) < 4


# ---------------------------------------------------------------- the named-specification logit


def test_named_specification_logit_matches_statsmodels():
    """Our fast fit on the drawn arrays equals statsmodels on the data layer's analysis frame
    (its own breadth and pipeline exposure; firms without a surveyed partner dropped)."""
    sm = pytest.importorskip("statsmodels.formula.api")
    from buzzpipe.synth import synthesize

    preset = load_preset("buzz")
    parameters = GeneratingParameters.from_preset(preset)
    block = next(iter_blocks(preset, 9))
    ours = fit_named_specification(block, parameters, ("pipeline_exposure",))
    frame = synthesize(preset, 9).analysis_frame().dropna(subset=["pipeline_exposure"])
    formula = (
        preset["calibration.specification"].replace("log(", "np.log(") + " + pipeline_exposure"
    )
    theirs = sm.logit(formula, frame).fit(disp=0, tol=1e-12, cov_type="HC0")
    their_names = [name.replace("log(", "np.log(") for name in ours.names]
    order = [theirs.params.index.get_loc(name) for name in their_names]
    assert np.allclose(ours.params, theirs.params.to_numpy()[order], rtol=0, atol=1e-8)
    n = len(frame)
    # Stata's robust logit covariance is the HC0 sandwich times N/(N-1).
    stata_cov = theirs.cov_params().to_numpy()[np.ix_(order, order)] * n / (n - 1)
    assert np.allclose(ours.robust_cov, stata_cov, rtol=1e-6, atol=1e-12)


def test_named_specification_logit_matches_the_estimator():
    """The same fit through buzzpipe.fit (formula, data layer, Stata's robust covariance)."""
    from buzzpipe import fit
    from buzzpipe.synth import synthesize

    preset = load_preset("norway2010")
    block = next(iter_blocks(preset, 13))
    ours = fit_named_specification(block, GeneratingParameters.from_preset(preset))
    frame = synthesize(preset, 13).analysis_frame()
    theirs = fit(preset["calibration.specification"], frame, family="logit", vcov="robust")
    assert list(theirs.params.index) == ours.names
    assert np.allclose(ours.params, theirs.params.to_numpy(), rtol=0, atol=1e-7)
    assert np.allclose(np.sqrt(np.diag(ours.robust_cov)), theirs.bse.to_numpy(), rtol=1e-6)


def test_the_named_specification_is_the_studys_controls_model():
    """Calibration targets the model the study fits: its controls model on a synthetic survey
    (measured openness included, as the published models control for managers' openness) is
    the preset's named specification, term for term."""
    from buzzpipe.study.models import main_specifications
    from buzzpipe.synth import synthesize

    preset = load_preset("norway2010")
    frame = synthesize(preset, 2010).analysis_frame()
    controls = {spec.name: spec for spec in main_specifications(frame, "product")}["controls"]
    assert controls.formula == preset["calibration.specification"].replace("log(", "np.log(")
    for name in ("buzz", "complement"):
        assert load_preset(name)["calibration.specification"] == preset["calibration.specification"]


def test_fast_fits_of_the_studys_tests_equal_the_study():
    """The power checks' fast fits give the study's own statistics on one survey: the controls
    model's international coefficient, the common-support difference of the first international
    and the first regional kind of partner (the pipelines-versus-buzz verdict's), the Wald test
    of b_international = b_regional, the supermodularity test of the regime model and the
    breadth interaction."""
    from buzzpipe.study.battery import run_study
    from buzzpipe.synth import synthesize
    from buzzpipe.synth.power import INTERACTION
    from buzzpipe.synth.specification import (
        first_partner_difference,
        fit_logit,
        fit_regime_model,
        linear_combination_z,
        named_design,
        supermodularity_z,
    )

    preset = load_preset("complement")
    parameters = GeneratingParameters.from_preset(preset)
    block = next(iter_blocks(preset, 3))
    results = run_study(
        synthesize(preset, 3),
        outcomes=["product"],
        seed=3,
        sensitivity=False,
        scenarios=(),
        heterogeneity=False,
    )
    controls = fit_named_specification(block, parameters)
    design, names, rows = named_design(block, parameters)
    same = fit_logit(design, block.outcomes["product"][rows], names)
    assert np.array_equal(same.params, controls.params)
    difference, error = first_partner_difference(
        controls, design, "breadth_international", "breadth_regional"
    )
    first_partner = results.lookup("tests/product/first_partner_international_minus_regional")
    assert difference == pytest.approx(first_partner.estimate, rel=1e-6)
    assert error == pytest.approx(first_partner.std_error, rel=1e-6)
    pairs = [
        (
            results.lookup("models/product/controls/breadth_international").statistic,
            controls.z_statistic("breadth_international"),
        ),
        (
            results.lookup("tests/product/international_minus_regional").statistic,
            linear_combination_z(
                controls, {"breadth_international": 1.0, "breadth_regional": -1.0}
            ),
        ),
        (
            results.lookup("tests/product/supermodularity").statistic,
            supermodularity_z(fit_regime_model(block, parameters)),
        ),
        (
            results.lookup("tests/product/interaction_regional_international").statistic,
            fit_named_specification(block, parameters, (INTERACTION,)).z_statistic(INTERACTION),
        ),
    ]
    for study_value, fast_value in pairs:
        assert fast_value == pytest.approx(study_value, rel=1e-6)
    assert results.lookup("models/product/controls/breadth_international").estimate == (
        pytest.approx(controls.coefficient("breadth_international"), abs=1e-9)
    )


# ---------------------------------------------------------------- calibration


def test_calibration_meets_its_targets_and_writes_them_back(tmp_path):
    """Calibrate a small variant (few seeds, so fast) from a deliberately wrong start."""
    source = tmp_path / "small.toml"
    source.write_text(
        "# my preset\n"
        'extends = "norway2010"\n\n'
        '[survey.firms]\nvalue = 800\nassumed = "small and fast"\n\n'
        '[calibration.seeds]\nvalue = 12\nassumed = "a quick test"\n\n'
        "[outcomes.product.intercept]\nvalue = 0.5\ncalibrated = true\n"
        'assumed = "wrong on purpose"\n'
    )
    preset = load_preset(source)
    outcome = calibrate(preset)
    assert outcome.converged
    summary = outcome.summary
    assert summary.mean_odds_ratio() == pytest.approx(
        1.26, abs=0.3 * summary.odds_ratio_monte_carlo_error()
    )
    for name in ("any_regional", "any_international", "product"):
        # within the resolution of 12 x 800 pooled firms
        assert summary.shares[name] == pytest.approx(
            preset[f"calibration.target_{name}"], abs=0.003
        )
    target = tmp_path / "calibrated.toml"
    write_calibrated(outcome, source, target)
    text = target.read_text()
    assert text.startswith("# my preset")
    assert "[calibration_result]" in text
    reloaded = load_preset(target)
    for key, value in outcome.values.items():
        assert reloaded[key] == value
    # Inherited values written into the file carry the provenance of their targets.
    appended = reloaded.parameters["outcomes.product.breadth_international"]
    assert appended.calibrated and appended.source == "published"
    assert appended.reason.startswith("calibrated by simulation to calibration.target_odds_ratio")
    assert reloaded.parameters["collaboration.scale_shift"].source == "assumed"  # national share
    again = simulate(reloaded, range(12))
    assert again.mean_odds_ratio() == pytest.approx(summary.mean_odds_ratio(), abs=1e-9)


def test_builtin_presets_record_their_calibration():
    for name in ("norway2010", "buzz", "complement"):
        preset = load_preset(name)
        result = preset.calibration_result
        assert result["converged"] is True
        assert result["seeds"] == preset["calibration.seeds"]
        target = preset["calibration.target_odds_ratio"]
        assert (
            abs(result["mean_odds_ratio_breadth_international"] - target)
            < result["monte_carlo_error_odds_ratio"]
        )


# ---------------------------------------------------------------- command line


def run_cli(*arguments, cwd):
    return subprocess.run(
        [sys.executable, "-m", "buzzpipe", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )


def test_cli_writes_a_survey(tmp_path):
    result = run_cli(
        "synth",
        "--preset",
        "buzz",
        "--seed",
        "4",
        "--out",
        "f.parquet",
        "--links",
        "l.csv",
        "--firms",
        "900",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(tmp_path / "f.parquet")) == 900
    assert (tmp_path / "l.csv").stat().st_size > 0


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (("--seed", "1", "--out", "f.xlsx"), "expected a name ending in .csv or .parquet"),
        (("--seed", "1", "--out", "f.csv", "--set", "nonsense=1"), "unknown preset key"),
        (("--seed", "1", "--out", "f.csv", "--set", "survey.firms=-3"), "survey.firms"),
        (("--seed", "1", "--out", "f.csv", "--preset", "atlantis"), "no such preset"),
        (("--out", "f.csv"), "--seed"),
        (("--seed", "1", "--out", "f.csv", "--firms", "0"), "too few firms"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_output(
    tmp_path, monkeypatch, capsys, arguments, fragment
):
    monkeypatch.chdir(tmp_path)
    assert main(["synth", *arguments]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and fragment in stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_calibrates_a_user_preset_and_keeps_its_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text(
        'extends = "norway2010"\n[survey.firms]\nvalue = 800\nassumed = "a quick check"\n'
    )
    arguments = ["synth", "--preset", "mine.toml", "--calibrate", "--seeds", "12"]
    arguments += ["--set", "links.in_survey_share=0.3", "--out", "calibrated.toml"]
    assert main(arguments) == 0
    assert "mean_odds_ratio_breadth_international" in capsys.readouterr().out
    calibrated = load_preset(tmp_path / "calibrated.toml")
    assert calibrated["links.in_survey_share"] == 0.3
    assert not calibrated.parameters["links.in_survey_share"].calibrated
    assert calibrated.parameters["outcomes.product.intercept"].calibrated
    assert calibrated.calibration_result["seeds"] == 12
    assert (tmp_path / "mine.toml").read_text().count("[") == 1  # the input is untouched


def test_with_dont_know_answers_the_fast_fit_still_matches_the_estimator():
    """Missing answers count as no, and a scale answered "don't know" throughout drops the firm,
    as the data layer and buzzpipe.fit do."""
    from buzzpipe import fit
    from buzzpipe.synth import synthesize

    preset = load_preset("norway2010", {"collaboration.dont_know_rate": 0.5})
    block = next(iter_blocks(preset, 17))
    ours = fit_named_specification(block, GeneratingParameters.from_preset(preset))
    frame = synthesize(preset, 17, edge_list=False).analysis_frame()
    assert frame["breadth_international"].isna().any()
    theirs = fit(preset["calibration.specification"], frame, family="logit", vcov="robust")
    assert np.allclose(ours.params, theirs.params.to_numpy(), rtol=0, atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    firms=st.integers(1, 400),
    dont_know=st.sampled_from([0.0, 0.05]),
    preset_name=st.sampled_from(["norway2010", "buzz", "complement"]),
)
def test_any_seed_and_size_gives_a_valid_survey(seed, firms, dont_know, preset_name):
    """Whatever the seed and size, the data layer accepts the survey in both forms."""
    from buzzpipe.synth import synthesize

    overrides = {"collaboration.dont_know_rate": dont_know}
    preset = load_preset(preset_name, overrides)
    edge_list = synthesize(preset, seed, firms=firms)
    firm_level = synthesize(preset, seed, firms=firms, edge_list=False)
    assert len(edge_list) == len(firm_level) == firms
    frame = edge_list.analysis_frame()
    assert (frame["new_to_market"] <= frame["product"]).all()
    if dont_know == 0:
        for scale in schema.SCALES:
            column = schema.breadth_column(scale)
            assert frame[column].equals(firm_level.analysis_frame()[column])


def _fail_at_the_second_block(monkeypatch) -> None:
    """Make the survey writer's second block raise ``RuntimeError('disk trouble')``."""
    import buzzpipe.synth.write as write_module

    calls = []
    real_block_frames = write_module.block_frames

    def failing_block_frames(block, parameters):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk trouble")
        return real_block_frames(block, parameters)

    monkeypatch.setattr(write_module, "block_frames", failing_block_frames)


def test_a_failure_mid_stream_leaves_no_half_written_files(tmp_path, monkeypatch):
    _fail_at_the_second_block(monkeypatch)
    (tmp_path / "f.parquet").write_bytes(b"the old file")
    with pytest.raises(RuntimeError, match="disk trouble"):
        write_survey(
            load_preset("norway2010"),
            1,
            tmp_path / "f.parquet",
            links_path=tmp_path / "l.csv",
            firms=1300,
            block_firms=500,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]
    assert (tmp_path / "f.parquet").read_bytes() == b"the old file"


def test_a_partitioned_survey_holds_the_single_file_rows_and_is_written_whole(
    tmp_path, monkeypatch
):
    """``synth --out FOLDER --edge-list``: one firms and one links partition per block, the rows
    of the single-file output in order; a failure at the second block leaves the earlier folder
    as it was and no temporaries."""
    import buzzpipe.synth.write as write_module
    from buzzpipe.survey import read_edge_list

    preset = load_preset("norway2010")
    write_survey(preset, 4, tmp_path / "f.parquet", links_path=tmp_path / "l.parquet",
                 firms=1300, block_firms=500)  # fmt: skip
    args = ["synth", "--seed", "4", "--firms", "1300", "--out", str(tmp_path / "survey")]
    written = write_module.write_partitioned(
        preset, 4, tmp_path / "survey", edge_list=True, firms=1300, block_firms=500
    )
    assert (written.firms, written.links_path) == (1300, tmp_path / "survey" / "links")
    for kind, single in (("firms", "f.parquet"), ("links", "l.parquet")):
        parts = sorted((tmp_path / "survey" / kind).glob("*.parquet"))
        assert [p.name for p in parts] == [f"part-0000{k}.parquet" for k in range(3)]
        joined = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(joined, pd.read_parquet(tmp_path / single))
    survey = read_edge_list(tmp_path / "survey" / "firms", tmp_path / "survey" / "links")
    assert len(survey) == 1300
    before = {p: p.read_bytes() for p in (tmp_path / "survey").rglob("*") if p.is_file()}
    _fail_at_the_second_block(monkeypatch)
    with pytest.raises(RuntimeError, match="disk trouble"):
        write_module.write_partitioned(
            preset, 5, tmp_path / "survey", edge_list=True, firms=1300, block_firms=500
        )
    after = {p: p.read_bytes() for p in (tmp_path / "survey").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet", "l.parquet", "survey"]
    assert main([*args, "--links", str(tmp_path / "x.parquet")]) == 2
    assert main([*args, "--edge-list"]) == 0  # the command replaces its own earlier folder
    assert len(pd.read_parquet(tmp_path / "survey" / "firms")) == 1300


def test_power_command_reports_rates_with_exact_binomial_intervals(capsys):
    """The power probe's intervals are Clopper-Pearson (statsmodels' 'beta'), and its command
    line prints a rate per finding and both mean odds ratios."""
    from statsmodels.stats.proportion import proportion_confint

    from buzzpipe.synth.power import FINDINGS, binomial_interval
    from buzzpipe.synth.power import main as power_main

    for successes, trials in ((0, 20), (13, 20), (187, 200), (20, 20)):
        expected = proportion_confint(successes, trials, alpha=0.05, method="beta")
        assert binomial_interval(successes, trials) == pytest.approx(expected, abs=1e-12)
    assert power_main(["complement", "--seeds", "3", "--first", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("complement: 3 seeds from 5")
    for finding in FINDINGS:
        assert f"  {finding} " in out
    assert "without openness" in out
