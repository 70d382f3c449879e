"""The same fit in memory, streamed from Parquet and on Dask (one 2-worker LocalCluster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import buzzpipe as bp
from buzzpipe.errors import InputError
from buzzpipe.estimate import chunks
from buzzpipe.estimate.design import _build_design_whole, build_design
from buzzpipe.estimate.streamed import fit_source

TOLERANCE = 1e-10
FORMULA = "{} ~ x1 + x2 + log(emp) + C(industry) + C(size):x1"


def _firms(n: int = 20_000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "emp": rng.integers(1, 500, size=n).astype(float),
            "industry": rng.choice(["a", "b", "c", "d"], size=n),
            "size": rng.integers(0, 3, size=n),
            "region": rng.integers(0, 40, size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
            "off": rng.normal(scale=0.1, size=n),
        }
    )
    eta = 0.3 * frame.x1 - 0.2 * frame.x2 + 0.1 * np.log(frame.emp) - 0.5
    eta += 0.4 * (frame.industry == "b")
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame["o"] = np.digitize(eta + rng.logistic(size=n), [-1.0, 0.0, 1.0]).astype(float)
    frame.loc[rng.choice(n, 50, replace=False), "x1"] = np.nan
    frame.loc[[3, 11], "emp"] = 0.0  # log(0): missing, as in Stata
    frame.loc[7, "industry"] = None
    return frame


@pytest.fixture(scope="module")
def firms(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    frame = _firms()
    path = tmp_path_factory.mktemp("firms") / "firms.parquet"
    frame.to_parquet(path, row_group_size=3_000)
    return pd.read_parquet(path), str(path)


def _agree(a, b, tolerance: float = TOLERANCE) -> None:
    assert list(a.params.index) == list(b.params.index)
    assert a.nobs == b.nobs and a.notes == b.notes
    assert np.array_equal(np.asarray(a.row_ids), np.asarray(b.row_ids))
    np.testing.assert_allclose(b.params.to_numpy(), a.params.to_numpy(), rtol=0, atol=tolerance)
    scale = np.abs(a.vcov.to_numpy()).max()
    np.testing.assert_allclose(b.vcov.to_numpy(), a.vcov.to_numpy(), rtol=0, atol=tolerance * scale)
    np.testing.assert_allclose(b.bread, a.bread, rtol=0, atol=tolerance * np.abs(a.bread).max())
    assert abs(a.llf - b.llf) <= tolerance * abs(a.llf)
    assert abs(a.llnull - b.llnull) <= tolerance * abs(a.llnull)


def test_design_built_per_block_equals_the_whole_design() -> None:
    frame = _firms(2_000, seed=4)
    # a level present only in rows lost to log(0) must not enter the specification
    frame.loc[[5, 6], "industry"] = "zz"
    frame.loc[[5, 6], "emp"] = 0.0
    formula = FORMULA.format("y")
    options = {"weights": "w", "cluster": "region", "offset": "off"}
    whole = _build_design_whole(formula, frame, **options)
    blocked = build_design(formula, frame, block_rows=97, **options)
    assert blocked.names == whole.names and not any("zz" in name for name in blocked.names)
    assert blocked.row_ids.equals(whole.row_ids)
    assert blocked.n_dropped_missing == whole.n_dropped_missing
    for name in ("X", "y", "weights", "offset", "clusters", "cluster_labels"):
        np.testing.assert_array_equal(getattr(blocked, name), getattr(whole, name))
    assert blocked.X.flags.c_contiguous


CASES = [
    ("logit", "classical", {}),
    ("logit", "robust", {"weights": "w", "offset": "off"}),
    ("probit", {"cluster": "region"}, {"weights": "w", "offset": "off"}),
    ("ologit", "robust", {"weights": "w", "offset": "off"}),
    ("ologit", {"cluster": "region"}, {}),
    ("lpm", "classical", {"offset": "off"}),
    ("lpm", {"cluster": "region"}, {"weights": "w"}),
]


@pytest.mark.parametrize(("family", "vcov", "options"), CASES)
def test_streamed_parquet_equals_memory(firms, family, vcov, options) -> None:
    frame, path = firms
    formula = FORMULA.format("o" if family == "ologit" else "y")
    in_memory = bp.fit(formula, frame, family, vcov, **options)
    streamed = bp.fit(formula, path, family, vcov, **options)
    _agree(in_memory, streamed)
    if vcov != "classical":
        assert in_memory.vcov_type == streamed.vcov_type != "classical"


@pytest.mark.parametrize("family", ["logit", "probit", "ologit", "lpm"])
def test_dask_equals_memory_and_stream(firms, dask_client, family) -> None:
    frame, path = firms
    formula = FORMULA.format("o" if family == "ologit" else "y")
    options = {"weights": "w", "offset": "off"}
    vcov = {"cluster": "region"}
    in_memory = bp.fit(formula, frame, family, vcov, **options)
    on_dask = bp.fit(formula, path, family, vcov, engine="dask", **options)
    _agree(in_memory, on_dask)
    np.testing.assert_allclose(
        on_dask.cluster_score_sums, in_memory.cluster_score_sums, rtol=0, atol=1e-9
    )


def test_dask_dataframe_robust(firms, dask_client) -> None:
    dd = pytest.importorskip("dask.dataframe")
    frame, path = firms
    formula = FORMULA.format("y")
    in_memory = bp.fit(formula, frame, "logit", "robust", weights="w")
    on_dask = bp.fit(formula, dd.read_parquet(path), "logit", "robust", weights="w")
    _agree(in_memory, on_dask)


def test_a_worker_lost_mid_fit_gives_the_identical_answer(firms, dask_client, tmp_path) -> None:
    from buzzpipe.estimate.dask_engine import DaskSource

    frame, path = firms
    formula = FORMULA.format("y")
    vcov = {"cluster": "region"}
    clean = fit_source(formula, DaskSource(path, dask_client), "logit", vcov)
    # the worker running the 12th task (a Newton step's) exits; Dask recomputes what it held
    faulty = DaskSource(path, dask_client, fault_at_task=12, fault_folder=str(tmp_path))
    survived = fit_source(formula, faulty, "logit", vcov)
    assert (tmp_path / "task-12").exists()
    assert np.array_equal(clean.params.to_numpy(), survived.params.to_numpy())
    assert np.array_equal(clean.vcov.to_numpy(), survived.vcov.to_numpy())


@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_a_corrupt_partition_is_a_one_line_error_naming_the_file(
    firms, tmp_path, engine, request
) -> None:
    frame, _path = firms
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:10_000].to_parquet(folder / "part-0.parquet")
    (folder / "part-1.parquet").write_bytes(b"PAR1 this is not a parquet file")
    if engine == "dask":
        request.getfixturevalue("dask_client")
    with pytest.raises(InputError) as error:
        bp.fit(FORMULA.format("y"), str(folder), "logit", engine=engine)
    message = str(error.value)
    assert "part-1.parquet" in message and "\n" not in message


def test_a_level_the_specification_does_not_know_names_the_chunk() -> None:
    frame = _firms(500, seed=2)
    formula = FORMULA.format("y")
    variables, level_variables, stateful = chunks.head_specification(formula, frame)
    known = frame[frame.industry != "d"]
    spec = chunks.specification(
        formula, known, variables=variables, level_variables=level_variables, stateful=stateful
    )
    with pytest.raises(InputError, match="part.7.parquet.*factor level"):
        chunks.build_chunk(spec, frame, where="part.7.parquet", first_row=0)


def test_engine_is_checked(firms) -> None:
    frame, _path = firms
    with pytest.raises(InputError, match="unknown engine"):
        bp.fit(FORMULA.format("y"), frame, engine="spark")


@pytest.mark.filterwarnings("ignore:only 6 clusters")
@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_wild_score_bootstrap_p_values_identical(firms, engine, request) -> None:
    from buzzpipe.estimate.wild_bootstrap import wild_score_bootstrap

    frame, path = firms
    if engine == "dask":
        request.getfixturevalue("dask_client")
    frame = frame.assign(city=frame["region"] % 6)
    path = path.replace("firms.parquet", "firms_city.parquet")
    frame.to_parquet(path, row_group_size=3_000)
    formula = FORMULA.format("y")
    fit = bp.fit(formula, frame, "logit", {"cluster": "city"}, weights="w", offset="off")
    options = {"draws": 999, "seed": 7}
    in_memory = wild_score_bootstrap(fit, frame, **options)
    chunked = wild_score_bootstrap(fit, path, engine=engine, **options)
    assert chunked.n_draws == in_memory.n_draws
    np.testing.assert_allclose(chunked.estimate, in_memory.estimate, rtol=0, atol=1e-8)
    for term, null in (("x1", 0.0), ("log(emp)", 0.05)):
        a, b = in_memory.test(term, null), chunked.test(term, null)
        assert a.p_value == b.p_value
        assert abs(a.statistic - b.statistic) <= 1e-8
    assert abs(in_memory.cluster_robust_se("x1") - chunked.cluster_robust_se("x1")) < 1e-12


@pytest.mark.parametrize("engine", ["stream", "dask"])
def test_margins_agree_as_sums_over_chunks(firms, engine, request) -> None:
    from buzzpipe.estimate.margins import margins

    frame, path = firms
    if engine == "dask":
        request.getfixturevalue("dask_client")
    formula = FORMULA.format("y")
    fit = bp.fit(formula, frame, "logit", {"cluster": "region"}, weights="w", offset="off")
    for options in (
        {"variables": ["x1", "emp"]},
        {"variables": ["x2"], "by": "size", "at": {"x1": [0.0, 1.0]}},
        {"variables": ["emp"], "kind": "plus_one"},
        {"variables": ["industry", "x1"]},  # a factor: each chunk given the sample's levels
    ):
        a = margins(fit, frame, **options)
        b = margins(fit, path, engine=engine, **options)
        assert list(a.table.index) == list(b.table.index)
        np.testing.assert_allclose(b.estimate, a.estimate, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(b.se, a.se, rtol=0, atol=TOLERANCE)
    with pytest.raises(InputError, match="factor variables by group"):
        margins(fit, path, engine=engine, variables=["industry"], by="size")


def test_dask_reads_a_relative_path_in_the_clients_folder(
    firms, dask_client, tmp_path, monkeypatch
) -> None:
    """The workers' folder is not the client's (on a real cluster, another machine's): a
    relative path given on the client is read there by its absolute path."""
    frame, path = firms
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "firms.parquet").write_bytes(open(path, "rb").read())
    monkeypatch.chdir(folder)  # the client's folder; the workers stay where they started
    formula = FORMULA.format("y")
    on_dask = bp.fit(formula, "firms.parquet", "logit", "robust", engine="dask")
    _agree(bp.fit(formula, frame, "logit", "robust"), on_dask)


def test_a_dask_sources_head_is_cut_on_the_worker(dask_client, monkeypatch) -> None:
    """A fit reads the first rows of its data for the specification: only those rows come to
    the client, not the whole first partition."""
    import dask.dataframe as dd

    from buzzpipe.estimate.dask_engine import DaskSource

    frame = pd.DataFrame({"y": np.arange(5_000.0) % 2, "x": np.arange(5_000.0), "g": "a"})
    source = DaskSource(dd.from_pandas(frame, npartitions=2), dask_client)
    load, _where, _first = source.parts[0]
    whole = dask_client.compute(load(None)).result()  # the first partition (Dask's dtypes)
    fetched = []
    compute = dask_client.compute

    def watched(*args, **kwargs):
        future = compute(*args, **kwargs)
        fetched.append(future)
        return future

    monkeypatch.setattr(dask_client, "compute", watched)
    head = source.head(7)
    pd.testing.assert_frame_equal(head, whole.iloc[:7])
    assert len(whole) == 2_500 and [len(future.result()) for future in fetched] == [7]
