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


def _labelled_frame(rng, n: int, name: str, values):
    """A frame of number, integer, category and text columns and ``name``, labelled not by
    position."""
    import numpy as np
    import pandas as pd

    columns = {
        "x": rng.normal(size=n),
        "k": rng.integers(0, 9, size=n),
        "region": pd.Categorical(rng.choice(["b", "a", "c"], size=n)),
        "name": rng.choice(["p", "q"], size=n).astype(object),
    }
    return pd.DataFrame({**columns, name: values}, index=np.arange(n) * 3 + 11)


def test_samples_are_selected_from_the_frame_kept_on_dask(dask_client):
    """The analysis frame goes to the cluster once; a sample of its rows is selected per
    partition on the workers, with only the columns it changed or added sent: the same frame
    (values, types, column order) as sending it whole."""
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 5_000
    frame = _labelled_frame(rng, n, "gap", np.where(rng.random(n) < 0.1, np.nan, 1.0))
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=1_200)
    with using(chosen):
        chosen.keep_frame(frame)
        complete = frame.loc[frame["gap"].notna() & (frame["k"] > 0)]
        changed = complete.copy()
        changed["x"] = changed["x"] + 1.0
        changed["share"] = changed["k"] / 9
        empty = frame.iloc[:0]
        mixed = frame.iloc[::-1]  # not the kept frame's order: sent whole
        for sample, sent in (
            (frame, 0),
            (complete, 0),
            (changed, 2 * len(changed)),
            (empty, 0),
            (mixed, 5 * n),
        ):
            before = chosen.sent_columns
            found = dask_client.compute(chosen._sample_on_cluster(sample)).result()
            whole = dd.from_pandas(sample.reset_index(drop=True), npartitions=1, sort=False)
            expected = dask_client.compute(whole).result()  # Dask's own string type
            pd.testing.assert_frame_equal(found.reset_index(drop=True), expected)
            assert chosen.sent_columns - before == sent


def test_the_frame_goes_to_the_workers_one_partition_at_a_time(dask_client):
    """Sending the analysis frame makes each partition (Dask's types, then its serialised
    bytes) only when its turn to be sent comes: this process allocates about one partition's
    worth on the way, not the frame's. Before, ``dd.from_pandas`` of the whole frame copied
    every column and every partition was serialised before any was sent: at a million firms
    the Dask client's resident set rose by 321 MiB for a 135 MiB frame, its peak of the run.
    The partitions are those ``dd.from_pandas`` makes, with its types."""
    import tracemalloc

    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 200_000
    columns = {f"x{k}": rng.normal(size=n) for k in range(6)}
    for k in range(16):
        answers = rng.integers(0, 2, size=n).astype(np.int8)
        columns[f"c{k}"] = pd.arrays.IntegerArray(answers, rng.random(n) < 0.05)
    columns["name"] = rng.choice(["p", "q"], size=n).astype(object)
    frame = pd.DataFrame(columns)
    size = frame.memory_usage().sum()  # the text column counted as 8-byte references
    warm = StudyEngine("dask", _client=dask_client, partition_rows=n // 8)
    warm.keep_frame(frame.iloc[:1_000])  # the imports and one-off set-up, not measured
    warm.close()
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=n // 8)
    with using(chosen):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            chosen.keep_frame(frame)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        whole = dd.from_pandas(frame, npartitions=8, sort=False)
        _kept, kept, bounds = chosen._frame
        assert list(bounds) == [*whole.divisions[:-1], n]
        found = dask_client.compute(kept).result()
        pd.testing.assert_frame_equal(found, whole.compute(scheduler="sync"))
    # 565b95c: 2.07 times the frame (3.23 in a process's first call); now 0.18
    assert peak < size / 2, (peak, size)


@pytest.mark.parametrize("engine_name", ["stream", "dask"])
def test_across_outcomes_sums_over_the_frames_chunks(survey, engine_name, request, monkeypatch):
    """suest's meat and the +1 changes compared across outcomes are summed over the chunks of
    the analysis frame (each model's own sample picked there by its bits): memory's tests."""
    from buzzpipe.estimate.sources import FrameSource

    original = FrameSource.__init__
    monkeypatch.setattr(
        FrameSource, "__init__", lambda self, data, block_rows=300: original(self, data, 300)
    )
    from buzzpipe.results import StudyResults
    from buzzpipe.results.contract import encode
    from buzzpipe.study.across_outcomes import compare_across_outcomes
    from buzzpipe.study.models import PRIMARY_INFERENCE, fit_outcome_models, inference_of

    frame = survey.analysis_frame()
    frame = frame.loc[frame.index % 7 != 3]  # rows left out: the samples are not the frame
    fits = {}
    for outcome in ("product", "process"):
        _sample, models = fit_outcome_models(frame, outcome, PRIMARY_INFERENCE)
        fits[outcome] = models["controls"][1]
    inference = inference_of(PRIMARY_INFERENCE)
    expected, found = StudyResults(), StudyResults()
    compare_across_outcomes(expected, fits, frame, inference)
    client = request.getfixturevalue("dask_client") if engine_name == "dask" else None
    chosen = StudyEngine(engine_name, _client=client, partition_rows=300)
    with using(chosen):
        chosen.keep_frame(frame)
        compare_across_outcomes(found, fits, frame, inference)
        assert chosen.sent_columns == 0
    memory, chunked = (encode(r.tests) for r in (expected, found))
    assert memory["across_outcomes"] and differences(memory, chunked) == []


def _bench():
    """bench/bench_first_partner.py as a module (bench/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "bench" / "bench_first_partner.py"
    spec = importlib.util.spec_from_file_location("bench_first_partner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def first_partner_case(survey):
    """The product model's first-partner bootstrap as the battery calls it (its results so far,
    the controls fit, the sample), captured from an in-memory run."""
    options = {"seed": 1, "wild_bootstrap_draws": 199, "bootstrap_replications": 0}
    return _bench().capture(survey, outcomes=["product"], heterogeneity=False, **options)


def first_partner_tests(case, engine) -> dict:
    """The first-partner bootstrap's records (tests ending in _wild_bootstrap) on ``engine``."""
    return _bench().bootstrap_tests(case, engine)


def _same_first_partner_tests(memory: dict, chunked: dict) -> None:
    assert memory and list(memory) == list(chunked)
    assert any(test.interval is not None for test in memory.values())  # the verdict's set
    for name, test in memory.items():
        other = chunked[name]
        assert other.p_value == test.p_value, name
        assert abs(other.statistic - test.statistic) <= 1e-10 * max(1.0, abs(test.statistic))
        assert (test.interval is None) == (other.interval is None)
        if test.interval is not None:
            ends = [end for segment in test.interval.segments for end in segment]
            others = [end for segment in other.interval.segments for end in segment]
            assert len(ends) == len(others)
            for a, b in zip(ends, others, strict=True):
                assert a == b or abs(a - b) <= 1e-10 * max(1.0, abs(a)), name
        assert other.note == test.note


def test_the_first_partner_bootstrap_streams_with_the_memory_numbers(
    first_partner_case, monkeypatch
):
    """The first-partner bootstrap and the verdict's restriction set over chunks of 150 rows:
    g(b), its gradient and the restricted fits summed over the chunks, no design of the sample
    built on the client, the p-values identical and the rest to 1e-10."""
    from buzzpipe.estimate import sources, wild_bootstrap
    from buzzpipe.study import common_support, probability_changes

    memory = first_partner_tests(first_partner_case, None)
    blocks = sources.FrameSource
    monkeypatch.setattr(sources, "FrameSource", lambda data: blocks(data, block_rows=150))

    def in_memory(*args, **kwargs):
        raise AssertionError("a design of the sample built in memory on a chunked engine")

    monkeypatch.setattr(probability_changes, "change_designs", in_memory)
    monkeypatch.setattr(common_support, "ChangeDesigns", in_memory)
    monkeypatch.setattr(wild_bootstrap.WildScoreBootstrap, "__init__", in_memory)
    streamed = first_partner_tests(first_partner_case, StudyEngine("stream"))
    _same_first_partner_tests(memory, streamed)


@pytest.mark.slow
def test_the_first_partner_bootstrap_on_dask_equals_memory(first_partner_case, dask_client):
    memory = first_partner_tests(first_partner_case, None)
    engine = StudyEngine("dask", partition_rows=250, _client=dask_client)
    _same_first_partner_tests(memory, first_partner_tests(first_partner_case, engine))


def _change_pairs():
    """The (change, base) pairs the study averages: common support's steps, the +1 of each
    scale (pipelines versus buzz) and the Ai-Norton pair (complementarity)."""
    from buzzpipe.study.common_support import set_breadth
    from buzzpipe.study.probability_changes import compose, plus_one

    scales = ("international", "regional", "national")
    pairs = {
        (step, scale): (set_breadth(scale, high), set_breadth(scale, low))
        for step, low, high in (("first_partner", 0, 1), ("second_partner", 1, 2))
        for scale in scales
    }
    pairs.update({("plus_one", scale): (plus_one(scale), None) for scale in scales})
    both = compose(plus_one("regional"), plus_one("international"))
    pairs["both"] = (both, plus_one("regional"))
    return pairs


def _same_changes(memory: dict, chunked: dict) -> None:
    import numpy as np

    assert list(memory) == list(chunked)
    for key, change in memory.items():
        other = chunked[key]
        assert abs(other.value - change.value) <= 1e-10, key
        assert np.allclose(other.gradient, change.gradient, rtol=0, atol=1e-10), key


def _chunks_of_150_rows(monkeypatch) -> None:
    """Stream blocks of 150 rows, and fail where a change's designs are built on more rows than
    a chunk (a design of the whole sample on the client)."""
    from buzzpipe.estimate.sources import FrameSource
    from buzzpipe.study import probability_changes

    original = FrameSource.__init__
    monkeypatch.setattr(
        FrameSource, "__init__", lambda self, data, block_rows=150: original(self, data, 150)
    )
    built = probability_changes.ChangeDesigns

    def chunk_sized(fitted, data):
        assert len(data) <= 150, "a design of the sample built on the client"
        return built(fitted, data)

    monkeypatch.setattr(probability_changes, "ChangeDesigns", chunk_sized)


@pytest.mark.parametrize("engine_name", ["stream", "dask"])
def test_average_changes_sum_over_the_samples_chunks(
    first_partner_case, engine_name, request, monkeypatch
):
    """Every probability change the study averages, summed over the sample's chunks (150-row
    blocks, 250-row partitions on the LocalCluster) in one pass: memory's values and gradients
    to 1e-10, no design of the whole sample built on the client."""
    from buzzpipe.study.probability_changes import average_changes

    fitted, sample, family = (first_partner_case[k] for k in ("fitted", "sample", "family"))
    pairs = _change_pairs()
    memory = average_changes(fitted, sample, family, pairs)
    _chunks_of_150_rows(monkeypatch)
    client = request.getfixturevalue("dask_client") if engine_name == "dask" else None
    chosen = StudyEngine(engine_name, _client=client, partition_rows=250)
    with using(chosen):
        chosen.keep_frame(sample)
        chunked = average_changes(fitted, sample, family, pairs)
    _same_changes(memory, chunked)


def test_common_support_pipelines_and_complementarity_stream_with_the_memory_numbers(
    first_partner_case, monkeypatch
):
    """The parts of the study that average probability changes (pipelines versus buzz, common
    support's steps and categories model, the Ai-Norton interaction) over 150-row blocks:
    memory's records to 1e-10, no design of the whole sample built on the client."""
    import copy

    from buzzpipe.results.contract import encode
    from buzzpipe.study.common_support import compare_on_common_support
    from buzzpipe.study.complementarity import assess_complementarity
    from buzzpipe.study.models import PRIMARY_INFERENCE, control_terms, inference_of
    from buzzpipe.study.pipelines_vs_buzz import compare_pipelines_and_buzz

    case = first_partner_case
    fitted, sample, family, outcome = (case[k] for k in ("fitted", "sample", "family", "outcome"))
    inference = inference_of(PRIMARY_INFERENCE)
    controls = control_terms(sample)[0]

    def parts(engine):
        found = copy.deepcopy(case["results"])
        found.tests.pop(outcome, None), found.descriptions.pop(outcome, None)
        with using(engine):
            compare_pipelines_and_buzz(found, outcome, fitted, sample, family, inference)
            compare_on_common_support(
                found, outcome, fitted, sample, controls, family, PRIMARY_INFERENCE, inference
            )
            assess_complementarity(
                found, outcome, sample, controls, family, PRIMARY_INFERENCE, inference
            )
        return {"tests": encode(found.tests), "descriptions": encode(found.descriptions)}

    memory = parts(None)
    _chunks_of_150_rows(monkeypatch)
    streamed = parts(StudyEngine("stream"))
    assert memory["tests"][outcome] and memory["descriptions"][outcome]
    assert "categories_first_partner_international" in memory["descriptions"][outcome]
    assert differences(memory, streamed) == []


@pytest.mark.parametrize("weighted", [False, True])
def test_descriptives_sum_the_frame_kept_on_dask(dask_client, weighted, monkeypatch):
    """The descriptive table from sums made per partition of the analysis frame kept on the
    cluster (300-row partitions): memory's table to 1e-10, its note the same; the study's own
    copy of the frame is then kept without sending it again."""
    import numpy as np
    import pandas as pd

    import buzzpipe as bp
    from buzzpipe.end_to_end import _describe
    from buzzpipe.survey import describe
    from buzzpipe.survey.describe import DescribeTable

    survey = bp.synthesize("norway2010", seed=5, firms=1_000)
    if weighted:
        frame = survey.analysis_frame()
        frame["weight"] = 1.0 + (np.arange(len(frame)) % 7) / 3
        survey = bp.Survey.from_frame(frame)
    memory = bp.describe(survey, weighted=weighted)

    def here(*args):
        raise AssertionError("the descriptives' sums made on the client")

    monkeypatch.setattr(describe, "_region_sums", here)  # the workers' own module is intact
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=300)
    with using(chosen):
        if weighted:
            chosen.keep_frame(survey.analysis_frame())
            table = DescribeTable(weighted=True)
            table.add(survey, chunks=chosen.frame_source())
            found = table.result()
        else:
            found = _describe(survey, chosen)
        kept = chosen._frame[1]
        assert kept.npartitions == 4
        study_copy = survey.analysis_frame()
        chosen.keep_frame(study_copy)  # run_study's call: the same data, not sent again
        assert chosen._frame[1] is kept and chosen._frame[0] is study_copy
    pd.testing.assert_frame_equal(found, memory, check_exact=True)  # exact sums: bit for bit
    assert found.attrs["note"] == memory.attrs["note"]


def test_each_chunks_designs_under_the_changes_are_built_once_per_bootstrap(
    first_partner_case, monkeypatch
):
    """The first-partner bootstrap evaluates g(b) tens of times; each chunk's designs under the
    changes (both scales' tests share the international ones) are built once and kept."""
    from buzzpipe.estimate import sources
    from buzzpipe.study.probability_changes import ChangeChunks

    blocks = sources.FrameSource
    monkeypatch.setattr(sources, "FrameSource", lambda data: blocks(data, block_rows=150))
    built = []
    build = ChangeChunks.build_chunk

    def counted(self, frame, where, first_row):
        built.append((id(self), first_row))
        return build(self, frame, where, first_row)

    monkeypatch.setattr(ChangeChunks, "build_chunk", counted)
    found = first_partner_tests(first_partner_case, StudyEngine("stream"))
    assert len(found) == 2
    chunks = -(-len(first_partner_case["sample"]) // 150)
    assert sorted(first for _spec, first in built) == list(range(0, 150 * chunks, 150))


def test_a_column_counts_as_shared_by_its_values_and_missing_places_whatever_its_type():
    """A sample's text (Arrow) and nullable columns are compared as arrays, not as a Python
    object per firm: equal where values and missing places match, else sent."""
    import numpy as np
    import pandas as pd

    from buzzpipe.study.engine import _same_values

    columns = {
        "text": pd.Series(["NO", None, "SE", "NO"], dtype="str"),
        "nullable": pd.Series([1, None, 2, 0], dtype="Int8"),
        "float": pd.Series([1.0, np.nan, 2.0, 0.5]),
        "category": pd.Series(pd.Categorical(["a", None, "b", "a"])),
    }
    changed = {
        "text": ["NO", "DK", "SE", "NO"],
        "nullable": [1, 3, 2, 0],
        "float": [1.0, 4.0, 2.0, 0.5],
        "category": ["a", "b", "b", "a"],
    }
    for name, kept in columns.items():
        assert _same_values(kept.copy(), kept), name
        assert _same_values(kept.iloc[[0, 2]].reset_index(drop=True), kept.iloc[[0, 2]]), name
        other = pd.Series(changed[name], dtype=kept.dtype)
        assert not _same_values(other, kept), name  # a missing place filled
        assert not _same_values(kept, other), name  # a value made missing
        assert not _same_values(other.iloc[[1, 2, 3, 0]].reset_index(drop=True), other), name
    assert not _same_values(columns["nullable"].astype("Int16"), columns["nullable"])


def test_rows_left_on_the_workers_are_the_rows_a_copy_gives(dask_client):
    """``rows_kept(..., reads=...)`` on dask: the rows' frame here holds only the columns read
    (and the weights), the rest selected from the kept frame on the workers by position; the
    sample there is the copy's (values, types, column order), with the columns its parent
    changed or added and those set on it afterwards, and a sample of such a sample too. Before,
    ``frame.loc[keep]`` copied every column on the client (spill-over's subsets)."""
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    from buzzpipe.study.models import rows_kept
    from buzzpipe.survey.schema import WEIGHT

    rng = np.random.default_rng(6)
    n = 5_000
    frame = _labelled_frame(rng, n, WEIGHT, rng.random(n) + 0.5)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=1_200)
    with using(chosen):
        chosen.keep_frame(frame)
        parent = frame.loc[frame["k"] > 0].copy(deep=False)
        parent["x"] = parent["x"] * 2.0  # changed: sent
        parent["pool"] = parent["k"] / 9  # added: sent
        keep = (parent["k"] % 2 == 0).to_numpy()
        sample = rows_kept(parent, keep, reads=["k"])
        assert list(sample.columns) == ["k"]  # the weights too on the workers alone
        sample["own"] = sample["k"] / 2  # set afterwards: sent
        copied = parent.loc[keep]
        copied["own"] = copied["k"] / 2
        inner = rows_kept(sample, (sample["k"] > 2).to_numpy(), reads=[])
        for found, expected in ((sample, copied), (inner, copied.loc[copied["k"] > 2])):
            # labels of its own (none of the kept frame's), its rows on the workers only
            assert len(found) == len(expected) and found.index.max() < 0
            parts = chosen._elsewhere[id(found)].parts
            assert not any(isinstance(local, np.ndarray) for _n, local, _r in parts)
            on_workers = dask_client.compute(chosen._sample_on_cluster(found)).result()
            whole = dd.from_pandas(expected.reset_index(drop=True), npartitions=1, sort=False)
            pd.testing.assert_frame_equal(
                on_workers.reset_index(drop=True), dask_client.compute(whole).result()
            )
        with using(StudyEngine()):  # in memory: the copy
            pd.testing.assert_frame_equal(rows_kept(parent, keep, reads=["k"]), parent.loc[keep])
    with pytest.raises(RuntimeError, match="outlived"):  # the kept frame let go
        chosen._selection(sample)


def test_a_samples_rows_and_its_fits_row_ids_stay_on_the_workers(dask_client):
    """On dask a sample of ``rows_kept`` (and a sample of that sample) holds here its length,
    the columns read and their types: which rows it holds are futures on the workers, per
    partition of the kept frame, its labels a range of its own, and a fit's row ids on it that
    range. The kept frame's labels of a fit's rows are asked of the engine (``labelled``) and
    are the copy's; the fit is memory's. The rows go with the sample, the fit's with the fit.
    On 5a2eb40 the client held the rows' positions and labels (16 bytes a row, 24 with the
    columns sent) and each fit its row ids (8 bytes a row)."""
    import gc

    import numpy as np
    import pandas as pd

    from buzzpipe.study.models import complete_rows, fit_model, rows_kept

    rng = np.random.default_rng(11)
    n = 6_000
    frame = _labelled_frame(rng, n, "y", (rng.random(n) < 0.4).astype(float))
    frame["z"] = np.where(rng.random(n) < 0.2, np.nan, 1.0)
    keep = (frame["x"] > -0.6).to_numpy()
    copied = frame.loc[keep]
    inner_keep = (copied["k"] % 3 != 0).to_numpy()
    expected = copied.loc[inner_keep]
    with using(StudyEngine()):
        memory = fit_model("y ~ x + k", expected)
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=1_500)
    with using(chosen):
        chosen.keep_frame(frame)
        sample = rows_kept(frame, keep, reads=[])
        inner = rows_kept(sample, inner_keep, reads=[])
        for found, rows in ((sample, copied), (inner, expected)):
            assert isinstance(found.index, pd.RangeIndex) and found.shape == (len(rows), 0)
            held = chosen._elsewhere[id(found)]
            assert held.sent is None and len(held.parts) == 4
            assert not any(isinstance(local, np.ndarray) for _n, local, _r in held.parts)
        fitted = fit_model("y ~ x + k", inner)
        assert isinstance(fitted.row_ids, pd.RangeIndex) and fitted.row_ids.equals(inner.index)
        assert chosen.labelled(fitted, frame).row_ids.equals(memory.row_ids)
        np.testing.assert_allclose(fitted.params, memory.params, rtol=1e-10, atol=1e-12)
        assert chosen.labelled(memory, frame) is memory  # not a fit of a sample kept there
        # frames made here with pandas from the sample (heterogeneity's copy, some of its rows,
        # a column set on them) are selected from its rows on the workers too
        copy = inner.copy(deep=False)
        copy["w"] = np.linspace(0.0, 1.0, len(copy))
        half = copy.loc[np.arange(len(copy)) % 2 == 0]
        with using(StudyEngine()):
            with_w = expected.assign(w=copy["w"].to_numpy())
            whole, halved = fit_model("y ~ x + w", with_w), fit_model("y ~ x + w", with_w[::2])
        for made, alike in ((copy, whole), (half, halved)):
            assert "k" in chosen.columns(made)  # a column on the workers only
            fit = fit_model("y ~ x + w", made)
            np.testing.assert_allclose(fit.params, alike.params, rtol=1e-10, atol=1e-12)
            assert chosen.labelled(fit, frame).row_ids.equals(alike.row_ids)
        del fit, made, copy, half
        # a mask made and used on the workers (rows_where): only the rows' number comes here
        where = chosen.rows_where(sample, complete_rows, ["z"], columns=["z"])
        present = copied.loc[copied["z"].notna()]
        assert isinstance(where.index, pd.RangeIndex) and where.shape == (len(present), 0)
        parts = chosen._elsewhere[id(where)].parts
        assert not any(isinstance(local, np.ndarray) for _n, local, _r in parts)
        on_workers = chosen.labelled(fit_model("y ~ x + k", where), frame)
        assert on_workers.row_ids.equals(present.index)
        samples = {id(sample), id(inner)}
        del sample, inner, held, found
        gc.collect()
        assert not samples & set(chosen._elsewhere)
        assert id(fitted) in chosen._fitted_rows  # its rows kept while it lives
        del fitted
        gc.collect()
        assert not chosen._fitted_rows


def test_rows_left_on_the_workers_hold_no_copy_of_the_columns_here(dask_client):
    """The rows of a sample whose columns stay on the workers cost their positions here, not
    a copy of every column: spill-over's own-pipeline and no-pipeline subsets were copies of
    the columns its parts read on the Dask client (at a million firms part of its 88 MiB)."""
    import tracemalloc

    import numpy as np
    import pandas as pd

    from buzzpipe.study.models import rows_kept

    rng = np.random.default_rng(7)
    n = 200_000
    frame = pd.DataFrame({f"x{k}": rng.normal(size=n) for k in range(20)})
    keep = rng.random(n) < 0.5
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=n // 4)
    with using(chosen):
        chosen.keep_frame(frame)
        rows_kept(frame.iloc[:1_000], keep[:1_000], reads=[])  # one-off set-up, not measured
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            sample = rows_kept(frame, keep, reads=["x0"])
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert list(sample.columns) == ["x0"] and len(sample) == keep.sum()
    # 5e5dcf2 copied the 20 columns (and the labels): more than the copy; now 0.33 of it,
    # the positions and labels of the rows (a few 8-byte arrays of them, whatever the columns)
    copy = frame.loc[keep].memory_usage().sum()
    assert peak < copy / 2, (peak, copy)


@pytest.mark.slow
def test_separate_estimates_by_sector_on_dask_give_the_memory_numbers(survey, dask_client):
    """Heterogeneity's fallback fits the controls model within each sector: on dask each
    sector's rows are selected on the workers (no copy of their columns here), same numbers."""
    from buzzpipe.results import StudyResults
    from buzzpipe.study.heterogeneity import separate_estimates
    from buzzpipe.study.models import breadth_terms, control_terms

    frame = survey.analysis_frame()
    controls, _ = control_terms(frame)

    def run(chosen):
        results = StudyResults()
        with using(chosen) as engine:
            engine.keep_frame(frame)
            separate_estimates(
                results, "product", frame, breadth_terms(frame), controls, "logit", "robust",
                "industry",
            )  # fmt: skip
        return json.loads(results.to_json())

    memory = run(None)
    assert sum(name.startswith("industry=") for name in memory["models"]["product"]) > 1
    assert differences(memory, run(StudyEngine("dask", _client=dask_client))) == []


def _share_and_flag(rows):
    """A module-level function of each row alone (the workers unpickle it by name)."""
    return {"share": rows["k"] / 9, "flag": (rows["x"] > 0).astype(float)}


def test_columns_computed_on_the_workers_are_the_columns_computed_here(dask_client):
    """``with_computed`` on dask: the frame here lacks the computed columns, which each
    partition of the sample makes from its rows on the workers; the sample there is the one
    computed here (values, types, column order), also for rows of it selected later, and a
    column of that name set here afterwards is sent, not computed. Before, they were computed
    here and sent (the sensitivity part's sum columns and regime indicators)."""
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    from buzzpipe.study.models import rows_kept, with_computed

    rng = np.random.default_rng(8)
    n = 4_000
    frame = pd.DataFrame(
        {"x": rng.normal(size=n), "k": pd.array(rng.integers(0, 9, size=n), dtype="Int16")},
        index=np.arange(n) * 2 + 5,
    )
    chosen = StudyEngine("dask", _client=dask_client, partition_rows=900)
    with using(StudyEngine()):
        here = with_computed(frame, _share_and_flag)
    assert list(here.columns) == ["x", "k", "share", "flag"]
    with using(chosen):
        chosen.keep_frame(frame)
        sample = with_computed(frame, _share_and_flag)
        assert list(sample.columns) == ["x", "k"]
        keep = (frame["k"] > 3).to_numpy()
        rows = rows_kept(sample, keep, reads=[])
        later = with_computed(frame, _share_and_flag)
        later["flag"] = 2.0  # set here: sent, not computed again
        expected_later = here.copy()
        expected_later["flag"] = 2.0
        for found, expected in ((sample, here), (rows, here.loc[keep]), (later, expected_later)):
            on_workers = dask_client.compute(chosen._sample_on_cluster(found)).result()
            whole = dd.from_pandas(expected.reset_index(drop=True), npartitions=1, sort=False)
            pd.testing.assert_frame_equal(
                on_workers.reset_index(drop=True), dask_client.compute(whole).result()
            )
