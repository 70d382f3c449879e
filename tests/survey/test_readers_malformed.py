"""Property-based: malformed files give an InputError (exit 2 on the command line), never any
other exception. Hypothesis mutates valid files cell by cell, byte by byte, and cuts them short."""

import io
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from survey_builders import canonical_frame

from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.survey import Survey, read_edge_list, read_survey
from buzzpipe.survey.readers import describe_file

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = canonical_frame(n=6, seed=1)
BASE = BASE[[c for c in BASE.columns if not c.startswith("collab_") or "suppliers" in c]]
BASE_CSV = BASE.to_csv(index=False)
CELL_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", " ", "NA", "nan", "inf", "-inf", "1e400", "-1", "2", "0.5", "1,5", '"', "yes", "9"]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def read_or_input_error(path: Path, **kwargs) -> None:
    """The property: a Survey or an InputError with a one-line message naming the file."""
    try:
        survey = read_survey(path, **kwargs)
    except InputError as error:
        message = str(error)
        assert "\n" not in message
        assert str(path) in message or "mapping" in message
        return
    assert isinstance(survey, Survey)
    survey.describe()  # a survey that validates can always be described


@st.composite
def mutated_csv(draw) -> str:
    lines = BASE_CSV.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["cell", "insert", "drop_line", "duplicate", "cut"]))
        row = draw(st.integers(0, len(lines) - 1))
        if operation == "cell":
            cells = lines[row].split(",")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(CELL_TEXT)
            lines[row] = ",".join(cells)
        elif operation == "insert":
            position = draw(st.integers(0, len(lines[row])))
            lines[row] = lines[row][:position] + draw(CELL_TEXT) + lines[row][position:]
        elif operation == "drop_line" and len(lines) > 1:
            del lines[row]
        elif operation == "duplicate":
            lines.insert(row, lines[row])
        elif operation == "cut":
            text = "\n".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].splitlines() or [""]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=mutated_csv())
def test_mutated_csv_gives_a_survey_or_an_input_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        read_or_input_error(path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_in_every_format_give_an_input_error(data):
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".csv", ".parquet", ".dta", ".sav"):
            path = Path(folder) / f"survey{suffix}"
            path.write_bytes(data)
            read_or_input_error(path)


@pytest.fixture(scope="module")
def binary_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    frame = canonical_frame(n=40, seed=2)
    frame = frame[[c for c in frame.columns if len(c) <= 32]]
    files = {}
    files[".parquet"] = folder / "good.parquet"
    frame.to_parquet(files[".parquet"], row_group_size=10)
    files[".dta"] = folder / "good.dta"
    pyreadstat.write_dta(frame.assign(region=frame["region"].str.len()), files[".dta"])
    files[".sav"] = folder / "good.sav"
    pyreadstat.write_sav(frame.assign(region=frame["region"].str.len()), files[".sav"])
    return {suffix: path.read_bytes() for suffix, path in files.items()}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255))))
def test_truncated_or_corrupted_binary_files_give_an_input_error(binary_files, cut, flips):
    with tempfile.TemporaryDirectory() as folder:
        for suffix, data in binary_files.items():
            damaged = bytearray(data[: int(len(data) * cut)])
            for where, byte in flips[:8]:
                if damaged:
                    damaged[int(where * (len(damaged) - 1))] = byte
            path = Path(folder) / f"survey{suffix}"
            path.write_bytes(bytes(damaged))
            read_or_input_error(path)
            try:  # the streamed reading of describe, batch by batch
                describe_file(path, batch_rows=7)
            except InputError as error:
                assert "\n" not in str(error) and str(path) in str(error)


@settings(max_examples=40, deadline=None)
@given(text=mutated_csv())
def test_command_line_never_shows_a_traceback(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "survey.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["describe", str(path), "--csv", str(Path(folder) / "table.csv")])
        assert code in (0, 2), err.getvalue()
        if code == 2:
            assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
            assert not (Path(folder) / "table.csv").exists()


LINKS_CSV = (
    "firm_id,partner_id,partner_type,partner_region,partner_country\n"
    "100,101,suppliers,Oslo,NO\n101,x,universities,,DE\n102,100,customers,,\n"
)


@settings(max_examples=40, deadline=None)
@given(text=st.data())
def test_mutated_links_give_a_survey_or_an_input_error(text):
    lines = LINKS_CSV.splitlines()
    row = text.draw(st.integers(1, len(lines) - 1))
    cells = lines[row].split(",")
    cells[text.draw(st.integers(0, len(cells) - 1))] = text.draw(CELL_TEXT)
    lines[row] = ",".join(cells)
    firms = BASE[[c for c in BASE.columns if not c.startswith("collab_")]].assign(country="NO")
    with tempfile.TemporaryDirectory() as folder:
        firms_path, links_path = Path(folder) / "firms.csv", Path(folder) / "links.csv"
        firms.to_csv(firms_path, index=False)
        links_path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        try:
            read_edge_list(firms_path, links_path).describe()
        except InputError as error:
            assert "\n" not in str(error)


MAPPING = """
[survey]
scales = ["regional"]
[codes.yn]
1 = 1
2 = 0
9 = "missing"
[columns]
firm_id = "id"
region = { column = "town", labels = { A = "a", B = "b" }, reference = "a" }
industry = "sector"
employees = "staff"
foreign_share = "foreign"
product = { columns = ["newprod", "newserv"], codes = "yn" }
[collaboration]
column = "sup_{partner_type}_{scale}"
codes = "yn"
[collaboration.scales]
regional = "local"
[collaboration.partner_types]
suppliers = "s"
"""
TOML_VALUES = st.sampled_from(
    [
        '"id"',
        "5",
        "[]",
        '["id", "staff"]',
        "{}",
        '{ column = "nope" }',
        "true",
        '"missing"',
        '{ A = "a" }',
        "1.5",
        '"yn"',
        '"zz"',
        '["local", "abroad"]',
        "{ column = 3 }",
    ]
)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_mutated_mapping_files_give_a_survey_or_an_input_error(data):
    lines = MAPPING.strip().splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        row = data.draw(st.integers(0, len(lines) - 1))
        if "=" in lines[row] and data.draw(st.booleans()):
            key = lines[row].split("=")[0]
            lines[row] = f"{key}= {data.draw(TOML_VALUES)}"
        else:
            del lines[row]
            if not lines:
                break
    frame = BASE.drop(columns=[c for c in BASE.columns if c.startswith("collab_")])
    frame = frame.rename(columns={"firm_id": "id", "employees": "staff"}).assign(
        town=["A", "B"] * 3,
        sector=frame["industry"],
        foreign=frame["foreign_share"],
        newprod=[1, 2, 9, 1, 2, 2],
        newserv=[2, 2, 2, 1, 9, 2],
        sup_s_local=[1, 2, 9, 1, 1, 2],
    )
    with tempfile.TemporaryDirectory() as folder:
        data_path, mapping_path = Path(folder) / "data.csv", Path(folder) / "mine.toml"
        frame.to_csv(data_path, index=False)
        mapping_path.write_text("\n".join(lines) + "\n")
        try:
            read_survey(data_path, mapping=mapping_path).describe()
        except InputError as error:
            assert "\n" not in str(error)
