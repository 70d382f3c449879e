"""Read survey files (CSV, Parquet, Stata .dta, SPSS .sav) into Surveys, by file extension.

A file that cannot be read at all (empty, truncated, corrupt, the wrong format) is an InputError
naming the file, never a library traceback. Stata and SPSS value labels come along for region
and industry; SPSS user-defined missing codes ("9 = don't know" declared in the file) and Stata's
extended missing values (.a-.z) are read as missing.
"""

import codecs
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey.describe import DescribeTable, describe
from buzzpipe.survey.mapping import Mapping, RawTable, apply_value_labels, load_mapping
from buzzpipe.survey.model import Survey

FORMATS = {
    ".csv": "CSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".dta": "Stata",
    ".sav": "SPSS",
    ".zsav": "SPSS",
}


def file_format(path: str | Path) -> str:
    """The format a file is read as, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            "unknown file type",
            file=str(path),
            value=suffix or "(no extension)",
            expected="a .csv, .parquet, .dta or .sav file",
        )
    return FORMATS[suffix]


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if not path.is_file():
        raise InputError("not a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("empty file", file=str(path), expected="a header and rows of data")


def read_table(path: str | Path) -> RawTable:
    """A whole file as a RawTable (the frame as stored, plus value labels)."""
    path = Path(path)
    kind = file_format(path)
    _check_exists(path)
    source = str(path)
    try:
        if kind == "CSV":
            frame, labels = _read_csv(path), {}
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
    if frame.shape[1] == 0:
        raise InputError("no columns", file=source, expected="a header and rows of data")
    return RawTable(frame=frame, source=source, value_labels=labels)


def iter_tables(path: str | Path, *, batch_rows: int = 65_536) -> Iterator[RawTable]:
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
        chunks = _chunks(path, kind, batch_rows)
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
        if frame.shape[1] == 0:
            raise InputError("no columns", file=source, expected="a header and rows of data")
        yield RawTable(frame=frame, source=source, value_labels=labels, first_row=first_row)
        first_row += len(frame)


def _chunks(path: Path, kind: str, batch_rows: int) -> Iterator[tuple[pd.DataFrame, dict]]:
    """(frame, value labels) batch by batch, in the reading library's own streaming mode."""
    if kind == "CSV":
        encoding = _csv_encoding(path)
        _check_csv_header(path, encoding)
        return ((f, {}) for f in pd.read_csv(path, chunksize=batch_rows, encoding=encoding))
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
    with open(path, "rb") as handle:
        try:
            while block := handle.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8-sig"


def _check_csv_header(path: Path, encoding: str) -> None:
    """pandas renames a repeated column name to name.1 silently; a survey must not repeat one."""
    with open(path, encoding=encoding, newline="") as handle:
        try:
            header = next(csv.reader(handle), [])
        except csv.Error:
            return  # the parser reports what is wrong with the file
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise InputError(
            "duplicate column name", file=str(path), column=repeated[0], expected="unique names"
        )


def _read_csv(path: Path) -> pd.DataFrame:
    encoding = _csv_encoding(path)
    _check_csv_header(path, encoding)
    try:
        return pd.read_csv(path, low_memory=False, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise InputError(
            "empty file", file=str(path), expected="a header and rows of data"
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

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
    if link_batches is not None:
        batches = ((canonical(table), table.first_row) for table in link_batches)
    return Survey.from_frame(
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


def read_survey(path: str | Path, *, mapping: Mapping | str | Path | None = None) -> Survey:
    """Read a firm-level survey file into a validated :class:`Survey`.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV, Parquet (``.parquet``, ``.pq``), Stata (``.dta``) or SPSS (``.sav``, ``.zsav``)
        file, told apart by its extension.
    mapping : Mapping, str or pathlib.Path, optional
        A mapping file (TOML) naming your columns and codes, or a shipped one by short name
        (``"norway"``, ``"cis"``); without one, columns must have the canonical names.

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
    return survey_from_table(read_table(path), mapping)


def read_edge_list(
    firms_path: str | Path,
    links_path: str | Path,
    *,
    mapping: Mapping | str | Path | None = None,
    batch_rows: int | None = None,
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
    firms = read_table(firms_path)
    if batch_rows is None:
        return survey_from_table(firms, mapping, links=read_table(links_path))
    batches = iter_tables(links_path, batch_rows=batch_rows)
    return survey_from_table(firms, mapping, link_batches=batches, links_source=str(links_path))


def describe_file(
    path: str | Path,
    *,
    links: str | Path | None = None,
    mapping: Mapping | str | Path | None = None,
    batch_rows: int = 65_536,
    weighted: bool = False,
) -> pd.DataFrame:
    """Describe a survey file in bounded memory: a firm-level file is streamed batch by batch; an
    edge-list survey holds its firms while its links file is streamed and counted."""
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if links is not None:
        survey = read_edge_list(path, links, mapping=mapping, batch_rows=batch_rows)
        return describe(survey, weighted=weighted)
    table = DescribeTable(weighted=weighted)
    firms = 0
    for raw in iter_tables(path, batch_rows=batch_rows):
        if len(raw.frame) == 0:
            continue  # an empty row group
        table.add(survey_from_table(raw, mapping))
        firms += len(raw.frame)
    if firms == 0:
        raise InputError("no firms", file=str(path), expected="at least one row of firm data")
    return table.result()
