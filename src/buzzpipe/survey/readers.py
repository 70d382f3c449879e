"""Read survey files (CSV, Parquet, Stata .dta, SPSS .sav, Excel) into Surveys, by extension.

CSV as people have it: comma-, semicolon-, tab- or bar-delimited (the delimiter that splits the
header into the most columns, as Stata's ``import delimited`` guesses it; a mapping's
``[survey] delimiter`` or ``--delimiter`` says it outright), with decimal commas in a
semicolon-delimited file (what Excel writes where the comma is the decimal sign; never guessed
in a comma-delimited file, where "1,604" is ambiguous: ``[survey] decimal`` says it), and
compressed (``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zip`` with one file). Excel
workbooks (``.xlsx``, ``.xls``, ``.ods``) are read through pandas with python-calamine: the
first sheet, its first row the header (Stata's ``import excel, firstrow``). Column names are
trimmed of surrounding whitespace.

A file that cannot be read at all (empty, truncated, corrupt, the wrong format) is an InputError
naming the file, never a library traceback. Stata and SPSS value labels come along for region
and industry; SPSS user-defined missing codes ("9 = don't know" declared in the file) and Stata's
extended missing values (.a-.z) are read as missing.
"""

import bz2
import codecs
import csv
import gzip
import io
import lzma
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey.describe import DescribeTable, describe
from buzzpipe.survey.mapping import (
    Mapping,
    RawTable,
    apply_value_labels,
    checked_columns,
    load_mapping,
)
from buzzpipe.survey.model import Survey

FORMATS = {
    ".csv": "CSV",
    ".tsv": "CSV",
    ".xlsx": "Excel",
    ".xlsm": "Excel",
    ".xls": "Excel",
    ".ods": "Excel",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".dta": "Stata",
    ".sav": "SPSS",
    ".zsav": "SPSS",
}


COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "bar": "|"}


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is split: None leaves the choice to detection."""

    delimiter: str | None = None
    decimal: str | None = None

    def __post_init__(self) -> None:
        if self.delimiter is not None:
            chosen = _DELIMITER_NAMES.get(self.delimiter, self.delimiter)
            if chosen not in DELIMITERS:
                raise InputError(
                    "unknown delimiter",
                    value=self.delimiter,
                    expected="one of , ; | tab (or comma, semicolon, bar)",
                )
            object.__setattr__(self, "delimiter", chosen)
        if self.decimal not in (None, ".", ","):
            raise InputError("unknown decimal sign", value=self.decimal, expected='"." or ","')

    def merged(self, other: "CsvDialect | None") -> "CsvDialect":
        """This dialect with ``other``'s choices where it makes none (the mapping's, say)."""
        if other is None:
            return self
        return CsvDialect(
            self.delimiter if self.delimiter is not None else other.delimiter,
            self.decimal if self.decimal is not None else other.decimal,
        )


def file_format(path: str | Path) -> str:
    """The format a file is read as, from its extension (a compressed file's inner one)."""
    if Path(path).is_dir():  # a folder of Parquet partitions (buzzpipe synth --partitions)
        return "Parquet"
    suffixes = [s.lower() for s in Path(path).suffixes]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in COMPRESSIONS:
        inner = suffixes[-2] if len(suffixes) > 1 else ""
        if FORMATS.get(inner) != "CSV":
            raise InputError(
                "a compressed file must be a compressed CSV file",
                file=str(path),
                value=inner + suffix if inner else suffix,
                expected="a name like survey.csv.gz, survey.csv.bz2 or survey.csv.zip",
            )
        return "CSV"
    if suffix not in FORMATS:
        raise InputError(
            "unknown file type",
            file=str(path),
            value=suffix or "(no extension)",
            expected="a .csv (also .csv.gz, .csv.zip), .xlsx, .parquet, .dta or .sav file",
        )
    return FORMATS[suffix]


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed by its extension (a zip archive must hold one file)."""
    compression = COMPRESSIONS.get(path.suffix.lower())
    if compression is None:
        return open(path, "rb")
    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "bz2":
        return bz2.open(path, "rb")
    if compression == "xz":
        return lzma.open(path, "rb")
    archive = zipfile.ZipFile(path)
    members = [
        info
        for info in archive.infolist()
        if not info.is_dir() and not info.filename.startswith("__MACOSX/")
    ]
    if len(members) != 1:
        archive.close()
        raise InputError(
            f"the zip archive holds {len(members)} files",
            file=str(path),
            value=[m.filename for m in members][:5] or None,
            expected="a zip archive with exactly one CSV file",
        )
    return archive.open(members[0])


def _header_line(path: Path, encoding: str) -> str:
    with _open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding=encoding, newline="")
        return text.readline()


def detect_dialect(path: Path, encoding: str, given: CsvDialect | None = None) -> CsvDialect:
    """The delimiter that splits the header into the most columns (a comma on a tie), unless
    given; decimal commas in a semicolon-delimited file, never guessed in other files."""
    given = given or CsvDialect()
    delimiter = given.delimiter
    if delimiter is None:
        header = _header_line(path, encoding)
        counts = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    decimal = given.decimal
    if decimal is None and delimiter != ";":
        decimal = "."
    return CsvDialect(delimiter, decimal)  # a semicolon file's None: "1,5" and "1.5" both read


_DECIMAL_COMMA = re.compile(r"^\s*[+-]?(\d+,\d*|,\d+|\d+)\s*$")


def decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns of numbers written with a decimal comma ("0,35") as numbers; a column with
    anything else in it stays as it is (for the checks to name). Applied after reading, so a
    quoted "0,5" in a comma-delimited file reads the same way when the decimal comma is said."""
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
            continue
        present = values.dropna().astype(str)
        if present.empty or not present.str.contains(",", regex=False).any():
            continue
        if present.str.match(_DECIMAL_COMMA).all():
            numbers = values.astype("object").where(values.notna(), None)
            numbers = numbers.map(lambda v: None if v is None else str(v).replace(",", "."))
            frame.isetitem(position, pd.to_numeric(numbers))
    return frame


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if path.is_dir() and any(path.glob("*.parquet")):
        return
    if not path.is_file():
        raise InputError("not a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("empty file", file=str(path), expected="a header and rows of data")


def read_table(path: str | Path, dialect: CsvDialect | None = None) -> RawTable:
    """A whole file as a RawTable (the frame as stored, plus value labels)."""
    path = Path(path)
    kind = file_format(path)
    _check_exists(path)
    source = str(path)
    try:
        if kind == "CSV":
            frame, labels = _read_csv(path, dialect), {}
        elif kind == "Excel":
            frame, labels = _read_excel(path), {}
        elif kind == "Parquet":
            frame, labels = _read_parquet(path), {}
        else:
            frame, labels = _read_labelled(path, kind)
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as error:  # the parsing libraries raise many kinds; all mean "unreadable"
        raise InputError(
            f"cannot read as {kind}: {_short(error)}",
            file=source,
            expected=f"a complete, readable {kind} file",
        ) from None
    frame = checked_columns(frame, source, kind)
    return RawTable(frame=frame, source=source, value_labels=labels)


def iter_tables(
    path: str | Path, *, batch_rows: int = 65_536, dialect: CsvDialect | None = None
) -> Iterator[RawTable]:
    """A file in batches of rows (CSV, Parquet, Stata and SPSS files all stream).

    Each batch knows the number of its first row, so errors name rows of the whole file.
    """
    path = Path(path)
    kind = file_format(path)
    _check_exists(path)
    source = str(path)

    def unreadable(error: Exception, rows: list[int] | None = None) -> InputError:
        return InputError(
            f"cannot read as {kind}: {_short(error)}",
            file=source,
            rows=rows,
            expected=f"a complete, readable {kind} file",
        )

    try:
        chunks = _chunks(path, kind, batch_rows, dialect)
    except pd.errors.EmptyDataError:
        raise InputError("empty file", file=source, expected="a header and rows of data") from None
    except InputError:
        raise
    except Exception as error:
        raise unreadable(error) from None
    first_row = 1
    while True:
        try:
            chunk = next(chunks, None)
        except MemoryError:
            raise
        except Exception as error:
            raise unreadable(error, [first_row]) from None
        if chunk is None:
            break
        frame, labels = chunk
        frame = checked_columns(frame, source, kind)
        yield RawTable(frame=frame, source=source, value_labels=labels, first_row=first_row)
        first_row += len(frame)


def _chunks(
    path: Path, kind: str, batch_rows: int, dialect: CsvDialect | None = None
) -> Iterator[tuple[pd.DataFrame, dict]]:
    """(frame, value labels) batch by batch, in the reading library's own streaming mode."""
    if kind == "CSV":
        encoding, chosen = _csv_setup(path, dialect)
        reader = pd.read_csv(
            _open_binary(path),
            chunksize=batch_rows,
            encoding=encoding,
            sep=chosen.delimiter,
        )
        if chosen.decimal != ".":
            return ((decimal_commas(f), {}) for f in reader)
        return ((f, {}) for f in reader)
    if kind == "Excel":
        return iter([(_read_excel(path), {})])
    if kind == "Parquet":
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(path).iter_batches(batch_rows)
        return ((batch.to_pandas(), {}) for batch in batches)
    import pyreadstat

    if kind == "Stata":
        chunks = pyreadstat.read_file_in_chunks(pyreadstat.read_dta, str(path), batch_rows)
    else:
        chunks = pyreadstat.read_file_in_chunks(
            pyreadstat.read_sav, str(path), batch_rows, user_missing=False
        )
    return ((f, dict(meta.variable_value_labels or {})) for f, meta in chunks)


def _short(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


def _csv_encoding(path: Path) -> str:
    """UTF-8 (a byte-order mark is dropped) when the whole file decodes so, else Latin-1:
    files exported from Stata or SPSS on Windows often are. Decoded in blocks, not held whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open_binary(path) as handle:
        try:
            while block := handle.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8-sig"


def _csv_setup(path: Path, dialect: CsvDialect | None) -> tuple[str, CsvDialect]:
    """The file's encoding and dialect, its header checked."""
    encoding = _csv_encoding(path)
    chosen = detect_dialect(path, encoding, dialect)
    _check_csv_header(path, encoding, chosen.delimiter or ",")
    return encoding, chosen


def _check_csv_header(path: Path, encoding: str, delimiter: str = ",") -> None:
    """pandas renames a repeated column name to name.1 silently; a survey must not repeat one."""
    try:
        header = next(csv.reader([_header_line(path, encoding)], delimiter=delimiter), [])
    except csv.Error:
        return  # the parser reports what is wrong with the file
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise InputError(
            "duplicate column name", file=str(path), column=repeated[0], expected="unique names"
        )


def _read_csv(path: Path, dialect: CsvDialect | None = None) -> pd.DataFrame:
    encoding, chosen = _csv_setup(path, dialect)
    try:
        with _open_binary(path) as handle:
            frame = pd.read_csv(
                handle,
                low_memory=False,
                encoding=encoding,
                sep=chosen.delimiter,
            )
        return decimal_commas(frame) if chosen.decimal != "." else frame
    except pd.errors.EmptyDataError:
        raise InputError(
            "empty file", file=str(path), expected="a header and rows of data"
        ) from None


def _read_excel(path: Path) -> pd.DataFrame:
    """The first sheet, its first row the header (python-calamine reads .xlsx, .xls, .ods)."""
    return pd.read_excel(path, sheet_name=0, engine="calamine")


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir():  # partitions in the order of their names
        files = sorted(path.glob("*.parquet"))
        return pa.concat_tables([pq.read_table(file) for file in files]).to_pandas()
    return pq.read_table(path).to_pandas()


def _read_labelled(path: Path, kind: str) -> tuple[pd.DataFrame, dict]:
    import pyreadstat

    if kind == "Stata":
        frame, meta = pyreadstat.read_dta(str(path))
    else:
        # user_missing=False: codes the file declares missing ("9 = don't know") become missing
        frame, meta = pyreadstat.read_sav(str(path), user_missing=False)
    return frame, dict(meta.variable_value_labels or {})


def _as_mapping(mapping: Mapping | str | Path | None) -> Mapping | None:
    if mapping is None or isinstance(mapping, Mapping):
        return mapping
    return load_mapping(mapping)


def survey_from_table(
    raw: RawTable,
    mapping: Mapping | None,
    *,
    links: RawTable | None = None,
    link_batches: Iterable[RawTable] | None = None,
    links_source: str | None = None,
    reference: dict[str, object] | None = None,
) -> Survey:
    """A Survey from tables as read, through the mapping when there is one.

    Links come whole (``links``) or as batches of the file ``links_source`` (``link_batches``:
    counted, not kept).
    """
    edge_list = links is not None or link_batches is not None
    if mapping is not None:
        firms, chosen = mapping.apply_firms(raw, edge_list=edge_list)
    else:
        firms, chosen = apply_value_labels(raw)

    def canonical(table: RawTable) -> pd.DataFrame:
        return mapping.apply_links(table) if mapping is not None else table.frame

    link_frame = canonical(links) if links is not None else None
    batches = None
    if links is not None:
        links_source = links.source
    if hasattr(link_batches, "count_links"):  # links on a Dask cluster: partitions mapped there
        batches = link_batches
    elif link_batches is not None:
        batches = ((canonical(table), table.first_row) for table in link_batches)
    survey = Survey.from_frame(
        firms,
        link_frame,
        reference={**chosen, **(reference or {})},
        source=raw.source,
        scales=mapping.scales if mapping else None,
        partner_types=mapping.partner_types if mapping else None,
        home_country=mapping.home_country if mapping else None,
        links_source=links_source,
        first_row=raw.first_row,
        link_batches=batches,
    )
    _release_arrow_pages()
    return survey


def _release_arrow_pages() -> None:
    """Give back the pages Arrow's memory pool keeps after reading and checking a survey (its
    text columns are Arrow's): it keeps them for reuse unless asked, about 60 bytes a firm of a
    register's firms file, held for the whole run (``--engine dask``'s client)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def csv_dialect(mapping: Mapping | None, delimiter: str | None) -> CsvDialect:
    """``--delimiter`` first, then the mapping's ``[survey] delimiter`` and ``decimal``."""
    chosen = CsvDialect(delimiter)
    if mapping is None:
        return chosen
    return chosen.merged(CsvDialect(mapping.delimiter, mapping.decimal))


def read_survey(
    path: str | Path,
    *,
    mapping: Mapping | str | Path | None = None,
    delimiter: str | None = None,
    client: Any = None,
) -> Survey:
    """Read a firm-level survey file into a validated :class:`Survey`.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV (also ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zip``), Excel (``.xlsx``,
        ``.xls``, ``.ods``), Parquet (``.parquet``, ``.pq``), Stata (``.dta``) or SPSS (``.sav``,
        ``.zsav``) file, told apart by its extension.
    mapping : Mapping, str or pathlib.Path, optional
        A mapping file (TOML) naming your columns and codes, or a shipped one by short name
        (``"norway"``, ``"cis"``); without one, columns must have the canonical names.
    delimiter : str, optional
        A CSV file's delimiter (``,`` ``;`` ``|`` or ``tab``); default: the mapping's
        ``[survey] delimiter``, else the one that splits the header into the most columns.
    client : distributed.Client, optional
        Read and check a Parquet file (a file, a folder of them or a glob) on this Dask
        cluster, partition by partition, and keep its table there (``survey/dask_firms.py``):
        the same survey and the same errors, the firm table never held here.

    Returns
    -------
    Survey
        The firms in the canonical schema, validated, with their derived measures.

    Notes
    -----
    Every problem is one :class:`~buzzpipe.errors.InputError` line naming the file, column, rows
    and value. Stata and SPSS value labels name region and industry categories in code order;
    SPSS user-missing codes and Stata's extended missing values read as "don't know". The
    reference category is the lowest code (Stata's rule) unless the mapping names it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import buzzpipe as bp
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> firms = bp.synthesize("norway2010", seed=1, firms=300, edge_list=False).firms
    >>> firms.to_csv(folder / "firms.csv", index=False)
    >>> survey = bp.read_survey(folder / "firms.csv")
    >>> len(survey), survey.scales
    (300, ('regional', 'national', 'international'))
    """
    mapping = _as_mapping(mapping)
    if client is not None and parquet_firms(path):
        read = read_firms_on_dask(path, client, mapping, edge_list=False)
        if read is not None:
            return Survey.on_workers(read)
    return survey_from_table(read_table(path, csv_dialect(mapping, delimiter)), mapping)


def parquet_firms(path: str | Path) -> bool:
    """A Parquet firms file, a folder of them or a glob of them: read and checked on Dask
    workers under ``--engine dask`` (``survey/dask_firms.py``); other formats are read here."""
    text = str(path)
    if any(character in text for character in "*?["):
        return text.lower().endswith((".parquet", ".pq"))
    try:
        return file_format(path) == "Parquet"
    except InputError:
        return False


def read_firms_on_dask(path: str | Path, client: Any, mapping: Mapping | None, **options: Any):
    """``dask_firms.read_firms_on_dask`` (imported when a file is read so)."""
    from buzzpipe.survey.dask_firms import read_firms_on_dask as read

    return read(path, client, mapping, **options)


def read_edge_list(
    firms_path: str | Path,
    links_path: str | Path,
    *,
    mapping: Mapping | str | Path | None = None,
    batch_rows: int | None = None,
    delimiter: str | None = None,
    client: Any = None,
) -> Survey:
    """Read a two-file edge-list survey: firms (no collaboration columns) and their links.

    Parameters
    ----------
    firms_path : str or pathlib.Path
        The firms file (any format :func:`read_survey` reads), with a ``country`` column or a
        mapping's ``home_country``.
    links_path : str or pathlib.Path
        The links: ``firm_id, partner_id, partner_type, partner_region, partner_country``.
    mapping : Mapping, str or pathlib.Path, optional
        As for :func:`read_survey` (its ``[links]`` section names the links' columns).
    batch_rows : int, optional
        Stream the links file in batches of this many rows: links are counted, not kept
        (``Survey.links`` is then None), so memory stays bounded; every measure is the same as
        reading the file whole.
    client : distributed.Client, optional
        Classify the links on this Dask cluster, partition by partition (a Parquet file, a
        folder of them or a glob; ``survey/dask_measures.py``): the same survey, the links
        never held here. A Parquet firms file is read, checked and kept there too
        (``survey/dask_firms.py``), its firm directory made there.

    Returns
    -------
    Survey
        Collaboration answers counted from the links by partner type and scale, and pipeline
        exposure through local partners that are surveyed firms.

    Notes
    -----
    A link is international when the partner's country differs from the firm's, regional when
    country and region match, national otherwise; a link whose scale cannot be told leaves the
    answer "don't know". A firm without links has no partners.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import buzzpipe as bp
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> drawn = bp.synthesize("norway2010", seed=1, firms=300)
    >>> firms = drawn.firms.loc[:, ~drawn.firms.columns.str.startswith("collab_")]
    >>> firms.to_csv(folder / "firms.csv", index=False)
    >>> drawn.links.to_csv(folder / "links.csv", index=False)
    >>> survey = bp.read_edge_list(folder / "firms.csv", folder / "links.csv")
    >>> len(survey), "pipeline_exposure" in survey.analysis_frame()
    (300, True)
    """
    mapping = _as_mapping(mapping)
    dialect = csv_dialect(mapping, delimiter)
    if client is not None:
        from buzzpipe.survey.dask_measures import DaskLinks

        links = DaskLinks(links_path, client, mapping)
        if parquet_firms(firms_path):  # the firms read and checked on the workers too
            home = mapping.home_country if mapping else None
            read = read_firms_on_dask(
                firms_path, client, mapping, edge_list=True, home_country=home
            )
            if read is not None:
                return Survey.on_workers(
                    read, link_batches=links, links_source=str(links_path), home_country=home
                )
        firms = read_table(firms_path, dialect)
        return survey_from_table(firms, mapping, link_batches=links, links_source=str(links_path))
    firms = read_table(firms_path, dialect)
    if batch_rows is None:
        return survey_from_table(firms, mapping, links=read_table(links_path, dialect))
    batches = iter_tables(links_path, batch_rows=batch_rows, dialect=dialect)
    return survey_from_table(firms, mapping, link_batches=batches, links_source=str(links_path))


def describe_file(
    path: str | Path,
    *,
    links: str | Path | None = None,
    mapping: Mapping | str | Path | None = None,
    batch_rows: int = 65_536,
    weighted: bool = False,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """Describe a survey file in bounded memory: a firm-level file is streamed batch by batch; an
    edge-list survey holds its firms while its links file is streamed and counted."""
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if links is not None:
        survey = read_edge_list(
            path, links, mapping=mapping, batch_rows=batch_rows, delimiter=delimiter
        )
        return describe(survey, weighted=weighted)
    table = DescribeTable(weighted=weighted)
    firms = 0
    dialect = csv_dialect(mapping, delimiter)
    for raw in iter_tables(path, batch_rows=batch_rows, dialect=dialect):
        if len(raw.frame) == 0:
            continue  # an empty row group
        table.add(survey_from_table(raw, mapping))
        firms += len(raw.frame)
    if firms == 0:
        raise InputError("no firms", file=str(path), expected="at least one row of firm data")
    return table.result()
