"""The study on the chunked engines: the same results.json numbers as in memory (1e-10).

``--engine stream`` (row blocks in this process) runs the whole battery here; ``--engine dask``
(the session's 2-worker LocalCluster) runs a smaller battery, slow-marked: each Newton pass of
each fit is a round of tasks on the cluster.
"""

import json

import pytest
from json_differences import differences

from buzzpipe.end_to_end import StudyOptions
from buzzpipe.errors import InputError
from buzzpipe.study.battery import run_study
from buzzpipe.study.engine import StudyEngine, using


def results(survey, engine, **options):
    options = {"seed": 1, "wild_bootstrap_draws": 199, "bootstrap_replications": 0, **options}
    with using(engine):
        return json.loads(run_study(survey, **options).to_json())


@pytest.fixture(scope="module")
def survey():
    import buzzpipe as bp

    return bp.synthesize("norway2010", seed=3, firms=800)


def test_the_streamed_study_gives_the_memory_numbers(survey):
    memory = results(survey, None, outcomes=["product", "product_novelty"])
    streamed = results(survey, StudyEngine("stream"), outcomes=["product", "product_novelty"])
    assert memory["models"] and memory["counterfactuals"]
    assert differences(memory, streamed) == []


def test_a_chunked_engine_refuses_the_pairs_bootstrap_in_one_line():
    with pytest.raises(InputError, match="--replications 0") as caught:
        StudyOptions(engine="dask", replications=199).check()
    assert "\n" not in str(caught.value)
    StudyOptions(engine="dask", replications=0).check()  # off: accepted
    StudyOptions(engine="dask", replications=199, counterfactuals=False).check()
    with pytest.raises(InputError, match="--engine dask"):
        StudyOptions(engine="stream", scheduler="tcp://localhost:8786").check()


@pytest.mark.slow
def test_the_study_on_dask_gives_the_memory_numbers(survey, dask_client):
    options = {"outcomes": ["product"], "heterogeneity": False}
    memory = results(survey, None, **options)
    on_dask = results(survey, StudyEngine("dask", _client=dask_client), **options)
    assert differences(memory, on_dask) == []


def test_a_sample_sent_to_dask_leaves_no_warning_in_the_notes(dask_client):
    """distributed warns when a graph is large: a sample of 100,000 firms is (12.9 MiB), and the
    warning ended in the models' notes of results.json, which then differed from memory's."""
    import warnings

    import dask
    import numpy as np
    import pandas as pd

    from buzzpipe.study.engine import StudyEngine

    frame = pd.DataFrame({"x": np.arange(2_000.0)})
    threshold = {"distributed.admin.large-graph-warning-threshold": "1kB"}
    with dask.config.set(threshold), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StudyEngine("dask").source(frame)
    assert not [w for w in caught if "large graph" in str(w.message)]
