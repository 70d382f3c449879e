"""Shared test fixtures: the surveys the tests of several stages build on.

This folder is on sys.path (pytest puts a rootdir conftest's folder there), so tests import its
helper modules by name: ``norwegian_layout`` (a survey file in a Norwegian questionnaire layout)
and ``browser_view`` (the report in a headless Chromium).
"""

import functools

import norwegian_layout
import pytest


@pytest.fixture(scope="session")
def norway_layout_csv(tmp_path_factory):
    """The 400-firm survey in the Norwegian-style layout (codes 1/2/9), read through the shipped
    mapping ``norway``: ``read_survey(norway_layout_csv, mapping="norway")``."""
    return norwegian_layout.write_csv(tmp_path_factory.mktemp("norway-layout") / "bedrifter.csv")


@functools.cache
def _synthetic_frame(preset: str, seed: int, firms: int | None):
    from buzzpipe.synth import synthesize

    return synthesize(preset, seed, firms=firms).analysis_frame()


@pytest.fixture(scope="session")
def synthetic_frame():
    """``synthetic_frame(preset, seed, firms=None)``: the analysis frame of a calibrated synthetic
    survey, drawn once per session for each (preset, seed, firms); a copy that tests may change."""

    def frame(preset: str = "norway2010", seed: int = 0, firms: int | None = None):
        return _synthetic_frame(preset, seed, firms).copy()

    return frame


@pytest.fixture(scope="session")
def dask_client():
    """One 2-worker LocalCluster (one thread each, worker processes) for the whole test session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        env={"OPENBLAS_NUM_THREADS": "1"},
    )
    client = distributed.Client(cluster)
    yield client
    from buzzpipe.estimate.dask_engine import close_remote_clients

    close_remote_clients()  # the commands' clients to this cluster's address, before it closes
    client.close()
    cluster.close()
