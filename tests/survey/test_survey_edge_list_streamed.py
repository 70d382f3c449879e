"""Edge-list surveys with the links file streamed in batches: the same survey as reading it whole.

The streamed reader counts links batch by batch (collaboration answers, distinct local partners
spilled to temporary files past a threshold); every derived measure and the descriptive table
must come out exactly as from the links held whole, and errors must still name the links file
and the row of the whole file.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from norwegian_layout import write_edge_list
from survey_builders import network

from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, edge_list, read_edge_list
from buzzpipe.survey.mapping import SHIPPED_MAPPINGS
from buzzpipe.survey.readers import describe_file
from buzzpipe.synth import generate
from buzzpipe.synth.generate import edge_list_firms


def synthetic_edge_list(n_firms: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    firms, links = generate("norway2010", seed=seed, firms=n_firms)
    return edge_list_firms(firms, "NO"), links


@pytest.fixture
def small_spill(monkeypatch):
    """Spill local partners to temporary files after a few records, in blocks of a few firms."""
    monkeypatch.setattr(edge_list, "SPILL_RECORDS", 50)
    monkeypatch.setattr(edge_list, "SPILL_BLOCK_FIRMS", 16)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_links_give_the_same_survey_as_links_held_whole(tmp_path, suffix, small_spill):
    firms, links = synthetic_edge_list(1500, seed=3)
    # links in a shuffled order, so a firm's links and partners fall in different batches
    links = links.sample(frac=1, random_state=np.random.default_rng(4)).reset_index(drop=True)
    firms_file, links_file = tmp_path / f"firms{suffix}", tmp_path / f"links{suffix}"
    for frame, path in ((firms, firms_file), (links, links_file)):
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    whole = read_edge_list(firms_file, links_file)
    streamed = read_edge_list(firms_file, links_file, batch_rows=997)
    assert streamed.links is None and len(whole.links) == len(links) > 5000
    expected = whole.analysis_frame()
    got = streamed.analysis_frame()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # the measure is not trivially empty: exposure varies and partners of unknown status occur
    exposure = got["pipeline_exposure"].dropna()
    assert exposure.nunique() > 5 and (got["pipeline_exposure_unknown_share"] > 0).any()
    pd.testing.assert_frame_equal(
        describe_file(firms_file, links=links_file, batch_rows=997), whole.describe()
    )


def test_streamed_links_match_the_synthetic_survey_built_in_memory(tmp_path, small_spill):
    firms, links = synthetic_edge_list(800, seed=5)
    firms.to_parquet(tmp_path / "firms.parquet")
    links.to_parquet(tmp_path / "links.parquet", row_group_size=300)
    in_memory = Survey.from_frame(firms, links, home_country="NO")
    streamed = read_edge_list(
        tmp_path / "firms.parquet", tmp_path / "links.parquet", batch_rows=128
    )
    pd.testing.assert_frame_equal(
        streamed.analysis_frame(), in_memory.analysis_frame(), check_exact=True
    )


def test_the_hand_worked_network_streamed_one_link_at_a_time(tmp_path):
    firms, links = network()
    firms["country"] = "NO"
    firms.to_csv(tmp_path / "firms.csv", index=False)
    links.to_csv(tmp_path / "links.csv", index=False)
    streamed = read_edge_list(tmp_path / "firms.csv", tmp_path / "links.csv", batch_rows=1)
    first = streamed.analysis_frame().set_index("firm_id").loc[1]
    # the numbers worked out by hand in test_survey_edge_list
    assert first["pipeline_exposure"] == pytest.approx(0.5)
    assert first["pipeline_exposure_unknown_share"] == pytest.approx(0.5)
    assert first["breadth_regional"] == 2 and pd.isna(first["collab_regional_consultants"])
    whole = Survey.from_frame(firms, links).analysis_frame()
    pd.testing.assert_frame_equal(streamed.analysis_frame(), whole, check_exact=True)


def test_streamed_links_through_the_norwegian_mapping(tmp_path):
    firms_file, links_file = write_edge_list(tmp_path)
    mapping = SHIPPED_MAPPINGS["norway"]
    whole = read_edge_list(firms_file, links_file, mapping=mapping)
    streamed = read_edge_list(firms_file, links_file, mapping=mapping, batch_rows=3)
    pd.testing.assert_frame_equal(
        streamed.analysis_frame(), whole.analysis_frame(), check_exact=True
    )


def test_an_error_in_a_late_batch_names_the_links_file_and_the_row_of_the_file(tmp_path):
    firms, links = network()
    firms["country"] = "NO"
    links.loc[9, "firm_id"] = 99
    links.loc[10, "partner_type"] = "banks"
    firms.to_csv(tmp_path / "firms.csv", index=False)
    links.to_csv(tmp_path / "links.csv", index=False)
    with pytest.raises(InputError) as error:
        read_edge_list(tmp_path / "firms.csv", tmp_path / "links.csv", batch_rows=4)
    message = str(error.value)
    assert "links.csv" in message and "row 10" in message and "unknown firm" in message
    links.loc[9, "firm_id"] = 3
    links.to_csv(tmp_path / "links.csv", index=False)
    with pytest.raises(InputError, match=r"links\.csv.*row 11.*unknown partner type"):
        read_edge_list(tmp_path / "firms.csv", tmp_path / "links.csv", batch_rows=4)


def test_partitions_partial_counts_spilled_in_blocks_equal_the_whole_count():
    """Dask partitions' partial counts (sorted by firm) are cut into blocks of firms where the
    blocks start, batches added here (unsorted) are sorted by block: either way the spilled
    files give the numbers of the links counted whole."""
    rng = np.random.default_rng(12)
    n_firms, n_links = 500, 6000
    firm_keys = pd.Series([str(i) for i in range(n_firms)], dtype="object")
    partner = rng.integers(0, 2 * n_firms, n_links).astype("object")
    partner[rng.random(n_links) < 0.05] = None
    links = pd.DataFrame(
        {
            "firm_id": rng.integers(0, n_firms, n_links),
            "partner_id": partner,
            "partner_type": rng.choice(["suppliers", "customers", "group"], n_links),
            "scale": rng.choice(["regional", "national", None], n_links),
        }
    )
    has_pipeline = pd.Series(rng.integers(0, 2, n_firms), dtype="Int8")
    whole = edge_list.pipeline_exposure(links, firm_keys, has_pipeline, local_scale="regional")
    none = pd.Series([None] * n_firms, dtype="object")
    directory = edge_list.FirmDirectory(firm_keys, none, none)
    counts = edge_list.ExposureCounts(directory, local_scale="regional", spill_records=300)
    counts._block_firms = 37  # many blocks, a partition's records across several
    for number, start in enumerate(range(0, n_links, 700)):
        batch = links.iloc[start : start + 700]
        if number % 2:  # a batch counted here: its records in the links' order
            counts.add(batch)
            continue
        partition = edge_list.ExposureCounts(directory, local_scale="regional")
        partition.add(batch)
        records, anonymous = partition.partial()  # as a Dask partition returns them
        assert (np.diff(records["firm"]) >= 0).all()
        counts.add_partial(records, np.flatnonzero(anonymous), anonymous[anonymous > 0])
    assert counts._spill is not None
    assert len(list(Path(counts._spill.name).iterdir())) > 10
    pd.testing.assert_frame_equal(counts.result(has_pipeline), whole, check_exact=True)


def test_exposure_counts_spilled_to_files_equal_counts_held_in_memory():
    rng = np.random.default_rng(11)
    n_firms, n_links = 300, 4000
    firm_keys = pd.Series([str(i) for i in range(n_firms)], dtype="object")
    partner = rng.integers(0, 2 * n_firms, n_links).astype("object")  # half not surveyed
    partner[rng.random(n_links) < 0.05] = None  # partners without an id
    links = pd.DataFrame(
        {
            "firm_id": rng.integers(0, n_firms, n_links),
            "partner_id": partner,
            "partner_type": rng.choice(["suppliers", "customers", "group"], n_links),
            "scale": rng.choice(["regional", "national", None], n_links),
        }
    )
    links = pd.concat([links, links.iloc[::3]], ignore_index=True)  # partners named twice
    n_links = len(links)
    has_pipeline = pd.Series(rng.integers(0, 2, n_firms), dtype="Int8")
    has_pipeline[rng.random(n_firms) < 0.1] = pd.NA
    whole = edge_list.pipeline_exposure(links, firm_keys, has_pipeline, local_scale="regional")
    none = pd.Series([None] * n_firms, dtype="object")
    directory = edge_list.FirmDirectory(firm_keys, none, none)
    counts = edge_list.ExposureCounts(directory, local_scale="regional", spill_records=100)
    for start in range(0, n_links, 333):
        counts.add(links.iloc[start : start + 333])
    assert counts._spill is not None  # the records did go to files
    pd.testing.assert_frame_equal(counts.result(has_pipeline), whole, check_exact=True)
    # and the whole-frame numbers agree with a direct count over distinct partners
    local = links[(links["scale"] == "regional") & (links["partner_type"] != "group")]
    firm = local["firm_id"].astype(str)
    status = dict(zip(firm_keys, has_pipeline, strict=True))
    for key in firm_keys:
        own = local[firm == key]
        named = {str(p) for p in own["partner_id"].dropna() if str(p) != key}
        partners = len(named) + int(own["partner_id"].isna().sum())
        known = [status[p] for p in named if p in status and not pd.isna(status[p])]
        row = whole.loc[int(key)]
        if partners == 0:
            assert row.isna().all()
            continue
        assert row["pipeline_exposure_unknown_share"] == pytest.approx(
            (partners - len(known)) / partners
        )
        if known:
            assert row["pipeline_exposure"] == pytest.approx(np.mean([k == 1 for k in known]))


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_a_damaged_links_file_is_one_line_on_the_command_line(tmp_path, capsys, damage):
    from buzzpipe.cli import main

    firms, links = network()
    firms["country"] = "NO"
    firms_file, links_file = tmp_path / "firms.parquet", tmp_path / "links.parquet"
    firms.to_parquet(firms_file)
    links.to_parquet(links_file)
    data = links_file.read_bytes()
    links_file.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "text": b"firm_id,partner_id\n1,2\n"}[
            damage
        ]
    )
    code = main(["describe", str(firms_file), "--links", str(links_file)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"buzzpipe: error: {links_file}: ")


def test_weighted_describe_of_a_streamed_edge_list_equals_the_survey_held_whole(tmp_path):
    firms, links = synthetic_edge_list(600, seed=8)
    firms["weight"] = np.random.default_rng(9).uniform(1, 50, len(firms))
    firms.to_parquet(tmp_path / "firms.parquet")
    links.to_parquet(tmp_path / "links.parquet")
    streamed = describe_file(
        tmp_path / "firms.parquet", links=tmp_path / "links.parquet", batch_rows=500, weighted=True
    )
    whole = Survey.from_frame(firms, links, home_country="NO").describe(weighted=True)
    pd.testing.assert_frame_equal(streamed, whole, check_exact=True)
    assert "pweight" in streamed.attrs["note"]
    exposure = ("pipelines through local partners", "pipeline_exposure", "mean")
    assert (
        streamed.loc[exposure, "all firms"]
        != Survey.from_frame(firms, links, home_country="NO").describe().loc[exposure, "all firms"]
    )
