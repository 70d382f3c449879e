"""What ``buzzpipe simulate`` prints and what its figures say about their bars and bands."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from buzzpipe.cli import main
from buzzpipe.simulate.experiments import openness_sweep, summarise
from buzzpipe.simulate.parameters import ModelParameters
from buzzpipe.simulate.plots import SERIES_PANELS, experiment_figure, series_figure
from buzzpipe.simulate.run import simulate, simulate_replicates
from buzzpipe.simulate.summary import city_table, summary_lines, survey_log_odds
from buzzpipe.simulate.survey_output import breadth, survey_frame

CITIES = {"Oslo": 300, "Bergen": 120, "Kristiansand": 40}


@pytest.fixture(scope="module")
def result():
    return simulate(ModelParameters(world_size=80), CITIES, 48, seed=5)


def test_odds_ratios_are_the_controls_model_fitted_to_the_written_survey(result):
    """Checked against statsmodels' logit on the survey frame the command writes."""
    frame = survey_frame(result)
    x = pd.DataFrame(
        {scale: breadth(frame, scale) for scale in ("regional", "national", "international")}
    )
    x["log_employees"] = np.log(frame["employees"])
    x["foreign_share"] = frame["foreign_share"]
    x = pd.concat([x, pd.get_dummies(frame["region"], drop_first=True, dtype=float)], axis=1)
    fit = sm.Logit(frame["product"].astype(float), sm.add_constant(x.astype(float))).fit(disp=0)
    ours = survey_log_odds(result)
    assert ours is not None
    for scale in ("regional", "national", "international"):
        assert ours[scale][0] == pytest.approx(fit.params[scale], rel=1e-6, abs=1e-8)
        assert ours[scale][1] == pytest.approx(fit.bse[scale], rel=1e-5)


def test_summary_reports_the_last_windows_innovation_and_the_frontier_gap(result):
    frame = survey_frame(result)
    table = city_table([result])
    by_city = frame.groupby("region", observed=True)["product"].mean()
    for row in table.itertuples():
        assert row.product_last_window == pytest.approx(by_city[row.city])
    series = result.series[(result.series["city"] == "Kristiansand") & (result.series["step"] > 36)]
    gap = table.set_index("city").loc["Kristiansand", "frontier_gap_late"]
    assert gap == pytest.approx(series["frontier_gap"].mean())
    lines = summary_lines([result])
    text = "\n".join(lines)
    odds = survey_log_odds(result)
    assert f"{math.exp(odds['international'][0]):.3f}" in text
    assert f"Kristiansand (40 firms): {by_city['Kristiansand']:.3f}" in text
    assert "SE" not in text  # one replicate: no standard errors claimed


def test_a_survey_that_cannot_be_fitted_is_left_out_not_filled_in():
    tiny = simulate(ModelParameters(world_size=20, national_partners=0.0), {"A": 12, "B": 3}, 24, 1)
    assert survey_log_odds(tiny) is None  # no firm reports a national partner: singular design
    assert "cannot be fitted" in "\n".join(summary_lines([tiny]))


def test_series_figure_has_units_and_says_what_its_bands_are():
    results = simulate_replicates(ModelParameters(world_size=30), {"A": 40, "B": 8}, 24, 3, 3)
    series = pd.concat([r.series.assign(replicate=r.replicate) for r in results], ignore_index=True)
    plt, figure = series_figure(series)
    try:
        labels = [axis.get_ylabel() for axis in figure.axes]
        assert labels == [unit for *_, unit in SERIES_PANELS] and all(labels)
        caption = figure._suptitle.get_text()
        assert "mean over 3 replicates" in caption and "2 standard errors over 3" in caption
        assert all(axis.collections for axis in figure.axes)  # the bands are drawn
    finally:
        plt.close(figure)
    plt, figure = series_figure(results[0].series)
    try:
        assert "one replicate" in figure._suptitle.get_text()
        assert not any(axis.collections for axis in figure.axes)
    finally:
        plt.close(figure)


def test_experiment_figure_says_its_bars_are_standard_errors_over_replicates():
    table = openness_sweep(ModelParameters(world_size=20), {"A": 30, "B": 5}, 24, 2, 2, (0.0, 1.0))
    plt, figure = experiment_figure(summarise(table, "omega"), "omega", 2)
    try:
        assert "bars: +/- 2 standard errors over 2 replicates" in figure._suptitle.get_text()
        assert all(axis.get_ylabel() for axis in figure.axes)
    finally:
        plt.close(figure)


def test_command_prints_the_summary_after_the_paths(tmp_path, capsys):
    scenario = tmp_path / "small.toml"
    scenario.write_text(
        "[run]\nsteps = 24\nseed = 4\n[cities]\nA = 200\nB = 60\n[model]\nworld_size = 30\n"
    )
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("survey.csv")
    summary = out[out.index(next(line for line in out if line.startswith("summary:"))) :]
    assert summary[0].startswith("summary: 260 firms in 2 cities, 24 steps, 1 replicate")
    assert any(line.strip().startswith("A (200 firms):") for line in summary)
    assert any("odds ratio per international partner type" in line for line in summary)
