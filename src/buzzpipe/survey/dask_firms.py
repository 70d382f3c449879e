"""A Parquet firms file read and checked on the Dask workers, partition by partition.

``buzzpipe analyze FIRMS [--links LINKS] --engine dask`` reads the firms file here when it is
Parquet (a file, a folder of them or a glob): each row group is a partition, read, put in
canonical names (the mapping) and checked on a worker, and kept there; the client reads only
the files' metadata (their row counts: each partition's first row in the whole file) and
small reductions of the partitions. The checks split in two:

- row by row, on the workers (:func:`_first_pass`): every column's types and ranges, the
  binaries, new_to_market only where product, breadth agreeing, the mapping's recodes, and a
  missing id, category or country. Each partition stops at its first failing check and
  returns it (an answer, not a failed task); the whole file's error is the first by the
  order a whole read checks in (the mapping's columns, then :meth:`Header.steps`), its rows
  those of every partition failing that same check, numbered in the whole file: the same
  one-line error as reading the file whole;
- over the whole file, from small reductions combined here: the ids unique (each partition's
  id hashes split by hash range into buckets, each bucket checked on a worker: only the rows
  of repeated hashes come here, and their ids to tell a repeat from a collision), the category
  sets and spelling merges (value counts per partition: the merge decided here once, then
  applied per partition, :func:`_canonical`), the reference category, the columns present.

The checked partitions stay on the workers (:class:`FirmsOnWorkers`): ``Survey.keep_on``
derives the analysis frame from them there (``StudyEngine.keep_derived``) and the links'
firm directory is made there from them (:meth:`FirmsOnWorkers.directory`). A file whose
partitions do not share one schema, or cannot be read, is read here as before
(``readers.read_table``), which names its problem as it always has.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pd_types

from buzzpipe.errors import InputError
from buzzpipe.survey import column_types
from buzzpipe.survey.mapping import Mapping, RawTable, apply_value_labels, checked_columns
from buzzpipe.survey.model import Header, firm_countries
from buzzpipe.survey.schema import CATEGORICAL_CONTROLS, COUNTRY, FIRM_ID

__all__ = ["FirmsOnWorkers", "FirmsRead", "read_firms_on_dask"]

# the most buckets the firm ids' hashes are split into (one per partition up to this)
ID_BUCKETS = 16

# the problems of each kind of check in the order a whole column's checks raise them
_ORDER = {
    "id": ("missing firm id", "duplicate firm id"),
    "category": (
        "missing value",
        "names that differ",  # the declared categories
        "infinite value",
        "names that differ ",  # the categories present (checked here over the whole file)
        "reference category not found",
    ),
    "number": ("not a number", "infinite value", "missing value", "value out of range"),
    "binary": ("not a number", "not a 0/1 value"),
    "novelty": ("not a number", "not a 0/1 value", "new to the market"),
    "count": ("not a number", "infinite value", "value out of range", "not a whole number"),
}
# the mapping's checks of a rule's columns, in the order they run
_MAPPING_ORDER = (
    "a code the mapping does not list",
    "cannot combine",
    "not a number to scale",
    "a code without a label",
)


@dataclass
class FirmsOnWorkers:
    """The checked firm table kept on the Dask workers: one future per partition (a frame
    whose index is its rows' positions in the file), the partitions' lengths and the table's
    columns and types (no rows)."""

    futures: list
    lengths: list[int]
    meta: pd.DataFrame
    client: Any

    def __len__(self) -> int:
        return int(sum(self.lengths))

    def gather(self) -> pd.DataFrame:
        """The whole table here (a survey used on the client: ``Survey.firms``)."""
        parts = self.client.gather(self.futures)
        return pd.concat(parts) if len(parts) > 1 else parts[0]

    def directory(self, home_country: str | None, source: str) -> DirectoryOnWorkers:
        """The links' firm directory (``edge_list.FirmDirectory``) made on a worker from the
        partitions and copied to every worker, which classify the links against it."""
        future = self.client.submit(_directory, home_country, source, *self.futures, pure=False)
        self.client.replicate([future])
        return DirectoryOnWorkers(future, len(self))


@dataclass
class DirectoryOnWorkers:
    """A firm directory made and kept on the workers (``dask_measures`` ships it no more)."""

    future: Any
    firms: int

    def __len__(self) -> int:
        return self.firms

    def release(self) -> None:
        self.future = None


def _directory(home_country: str | None, source: str, *parts: pd.DataFrame) -> Any:
    from buzzpipe.survey.edge_list import FirmDirectory

    columns = [FIRM_ID, "region", *([COUNTRY] if COUNTRY in parts[0].columns else [])]
    firms = pd.concat([part[columns] for part in parts], ignore_index=True)
    countries = firm_countries(firms, home_country, source)
    return FirmDirectory(firms[FIRM_ID], firms["region"], countries)


@dataclass
class FirmsRead:
    """What reading a firms file on the workers gives ``Survey.on_workers``."""

    parts: FirmsOnWorkers
    header: Header
    source: str
    reference: dict[str, object]
    category_rules: dict[str, tuple[list | None, object]]
    notes: list[str] = field(default_factory=list)
    spellings: dict[str, dict[object, int]] = field(default_factory=dict)


def parquet_parts(path: str | Path) -> tuple[list[tuple[str, int, int]], Any] | None:
    """Each row group of a Parquet firms file (a file, a folder of them, a glob) as (file,
    row group, number of rows before it) and the files' schema, read from their metadata;
    None where they cannot be read so or do not share one schema (read whole, the file's
    problem is named as it always is)."""
    import pyarrow.parquet as pq

    from buzzpipe.estimate.sources import parquet_files

    text = str(path)
    try:
        if Path(text).is_dir():  # as a whole read takes a folder: its own files, by name
            files = [str(file) for file in sorted(Path(text).glob("*.parquet"))]
        else:
            files = parquet_files(text)
        parts, first, schema = [], 0, None
        for file in files:
            opened = pq.ParquetFile(file)
            if schema is None:
                schema = opened.schema_arrow
            elif not opened.schema_arrow.equals(schema, check_metadata=False):
                return None
            metadata = opened.metadata
            for group in range(metadata.num_row_groups):
                parts.append((str(Path(file).resolve()), group, first))
                first += metadata.row_group(group).num_rows
    except Exception:  # noqa: BLE001 - any problem: read whole, which names it
        return None
    return (parts, schema) if parts else None


def read_firms_on_dask(
    path: str | Path,
    client: Any,
    mapping: Mapping | None,
    *,
    edge_list: bool,
    home_country: str | None = None,
) -> FirmsRead | None:
    """Read and check a Parquet firms file on the Dask cluster of ``client`` (see the
    module's documentation): the checked table kept there, the same survey's description
    (header, references, notes, spellings) made here, and the same one-line error as reading
    the file whole for bad input. None where the file is not read so (``parquet_parts``)."""
    found = parquet_parts(path)
    if found is None:
        return None
    parts, schema = found
    source = str(path)
    empty = RawTable(checked_columns(schema.empty_table().to_pandas(), source, "Parquet"), source)
    names, reference = _apply(empty, mapping, edge_list)
    names = [str(name) for name in names.columns]
    rows = sum(_row_counts(parts))
    scales = mapping.scales if mapping else None
    partner_types = mapping.partner_types if mapping else None
    try:
        if rows == 0:
            raise InputError("no firms", file=source, expected="at least one row of firm data")
        header = Header.of(
            names, source=source, scales=scales, partner_types=partner_types, edge_list=edge_list
        )
    except InputError as refused:  # after a bad code the mapping finds in any row
        answers = _first_passes(client, parts, source, mapping, edge_list, None, home_country)
        if any(answer["summary"].get("unreadable") for answer in answers):
            return None
        _raise_first([a["summary"].get("error") for a in answers])
        raise refused from None
    steps = header.steps(names)
    answers = _first_passes(client, parts, source, mapping, edge_list, header, home_country)
    if any(answer["summary"].get("unreadable") for answer in answers):
        return None
    summaries = [answer["summary"] for answer in answers]
    errors = [summary.get("error") for summary in summaries]
    first = min((error for error in errors if error is not None), default=None, key=_by_rank)
    reference = {**reference}
    category_rules: dict[str, tuple[list | None, object]] = {}
    notes: list[str] = []
    spellings: dict[str, dict[object, int]] = {}
    plan: dict[str, Any] = {}
    for step, (column, kind) in enumerate(steps):
        if first is not None and first[0] < (1, step):
            break
        if kind == "id":
            plan[column] = _id_plan(summaries)
            if first is not None and first[0][:2] == (1, step):
                continue  # an id missing: refused before any repeat
            found_error = _duplicates(client, answers, step, plan[column], source)
        elif kind == "category":
            found_error = _category_plan(
                summaries, column, step, source, reference, category_rules, notes, spellings, plan
            )
        else:
            continue
        if found_error is not None and (first is None or found_error[0] < first[0]):
            first = found_error
    if first is None and edge_list and COUNTRY not in names and home_country is None:
        firm_countries(pd.DataFrame(index=pd.RangeIndex(0)), None, source)  # refused
    if first is not None:  # with the rows of every partition failing the same check
        _raise_first([first] if first not in errors else errors)
    futures = [
        client.submit(_canonical, answer["frame"], first_row, header, plan, source, pure=False)
        for answer, (_file, _group, first_row) in zip(answers, parts, strict=True)
    ]
    del answers  # the mapped partitions let go on the workers once checked
    meta = client.submit(operator.methodcaller("head", 0), futures[0]).result()
    for column in CATEGORICAL_CONTROLS:
        categories = meta[column].cat.categories
        if len(categories):
            first_category = categories[0]
            reference[column] = (
                first_category.item() if isinstance(first_category, np.generic) else first_category
            )
    return FirmsRead(
        FirmsOnWorkers(futures, _row_counts(parts), meta, client),
        header,
        source,
        reference,
        category_rules,
        notes,
        spellings,
    )


def _row_counts(parts: list[tuple[str, int, int]]) -> list[int]:
    import pyarrow.parquet as pq

    return [pq.ParquetFile(file).metadata.row_group(group).num_rows for file, group, _ in parts]


def _apply(
    raw: RawTable, mapping: Mapping | None, edge_list: bool
) -> tuple[pd.DataFrame, dict[str, object]]:
    if mapping is not None:
        return mapping.apply_firms(raw, edge_list=edge_list)
    return apply_value_labels(raw)


def _first_passes(
    client: Any,
    parts: list[tuple[str, int, int]],
    source: str,
    mapping: Mapping | None,
    edge_list: bool,
    header: Header | None,
    home_country: str | None,
) -> list[dict]:
    """:func:`_first_pass` of every partition: (its summary brought here; futures of its
    mapped frame and its id buckets, kept on the workers)."""
    buckets = max(1, min(len(parts), ID_BUCKETS))
    answers = []
    for file, group, first_row in parts:
        whole = client.submit(
            _first_pass, file, group, first_row, source, mapping, edge_list, header,
            home_country, buckets, pure=False,
        )  # fmt: skip
        answers.append(
            {
                "first_row": first_row,
                "summary": client.submit(operator.itemgetter("summary"), whole),
                "frame": client.submit(operator.itemgetter("frame"), whole),
                "ids": client.submit(operator.itemgetter("ids"), whole),
            }
        )
        del whole
    summaries = client.gather([answer["summary"] for answer in answers])
    for answer, summary in zip(answers, summaries, strict=True):
        answer["summary"] = summary
    return answers


def _first_pass(
    file: str,
    group: int,
    before: int,
    source: str,
    mapping: Mapping | None,
    edge_list: bool,
    header: Header | None,
    home_country: str | None,
    buckets: int,
) -> dict:
    """One partition read, mapped and checked row by row (a task on a worker): its summary
    (rows, the first failing check as (rank, the error's parts), the firm ids' and categories'
    reductions), its mapped frame and its ids' hashes and rows by bucket (kept there)."""
    from buzzpipe.estimate.sources import read_row_group

    summary: dict[str, Any] = {}
    answer: dict[str, Any] = {"summary": summary, "frame": None, "ids": None}
    try:
        frame = read_row_group(file, group, None)
    except Exception:  # noqa: BLE001 - read whole on the client, which names the problem
        summary["unreadable"] = True
        return answer
    raw = RawTable(frame, source, first_row=before + 1)
    try:
        mapped, _chosen = _apply(raw, mapping, edge_list)
    except InputError as error:
        summary["error"] = (_mapping_rank(error, mapping, edge_list), _parts(error))
        return answer
    answer["frame"] = mapped
    if header is None:
        return answer
    where = {"file": source, "first_row": before + 1}
    steps = header.steps(mapped.columns)
    checked: dict[str, pd.Series] = {}
    step, kind = 0, "id"
    try:
        for step, (column, kind) in enumerate(steps):  # noqa: B007 - the failing step
            if kind == "id":
                column_types.check_firm_ids_present(mapped[column], **where)
                summary["ids"] = (
                    pd_types.is_float_dtype(mapped[column]),
                    pd_types.is_integer_dtype(mapped[column]),
                    column_types.integral_float_ids(mapped[column]),
                )
                answer["ids"] = _id_buckets(mapped[column], before, buckets)
            elif kind == "category":
                values, declared = column_types.category_values(
                    mapped[column], column=column, required=column == "region", **where
                )
                counts = values.dropna().value_counts(sort=False)
                summary[column] = (declared, {k: int(n) for k, n in counts.items()})
            elif kind == "agrees":
                break
            else:
                checked[column] = header.check(mapped, checked, column, kind, where)
        kind = "agrees"
        header.check_agreement(pd.DataFrame(checked, copy=False), where)
        if edge_list:
            step, kind = len(steps), "country"
            firm_countries(pd.DataFrame(checked, copy=False), home_country, source, before + 1)
    except InputError as error:
        if kind == "agrees":
            step = steps.index((error.column, "agrees"))
        summary["error"] = ((1, step, _rank(kind, error.problem)), _parts(error))
    return answer


def _rank(kind: str, problem: str) -> int:
    order = _ORDER.get(kind, ())
    return next((n for n, start in enumerate(order) if problem.startswith(start)), 0)


def _mapping_rank(error: InputError, mapping: Mapping | None, edge_list: bool) -> tuple:
    """Where the mapping raised ``error`` in its order: the rule, the check, the column."""
    rules = [] if mapping is None else mapping.firm_rules
    rules = [rule for rule in rules if not (edge_list and rule.collaboration)]
    check = next(
        (n for n, start in enumerate(_MAPPING_ORDER) if error.problem.startswith(start)), 0
    )
    for number, rule in enumerate(rules):
        if error.column in rule.sources:
            return (0, number, check, rule.sources.index(error.column))
    return (0, -1, check, 0)


def _parts(error: InputError) -> dict:
    """The error's parts (an InputError sent back whole loses them)."""
    return {
        "problem": error.problem,
        "file": error.file,
        "column": error.column,
        "rows": error.rows,
        "value": error.value,
        "expected": error.expected,
    }


def _raise_first(errors: list) -> None:
    """The first of the partitions' errors by rank, with the rows of every partition failing
    the same check (in partition order): the whole file's error."""
    found = [error for error in errors if error is not None]
    if not found:
        return
    rank = min(error[0] for error in found)
    same = [error[1] for error in found if error[0] == rank]
    rows = [row for error in same for row in (error["rows"] or [])]
    raise InputError(**{**same[0], "rows": rows or None})


def _id_buckets(ids: pd.Series, before: int, buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The partition's firm ids' 8-byte hashes (of their keys: 17, 17.0 and "17" are one id)
    and row numbers in the file, split by hash into ``buckets``."""
    hashes = pd.util.hash_array(column_types.id_keys(ids).to_numpy(dtype="object"))
    rows = np.arange(before + 1, before + 1 + len(ids), dtype=np.int64)
    bucket = hashes % np.uint64(buckets)
    return [(hashes[bucket == b], rows[bucket == b]) for b in range(buckets)]


def _bucket(ids: list, number: int) -> tuple[np.ndarray, np.ndarray]:
    return ids[number]


def _repeated(*parts: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The rows of one bucket (every partition's share of it) whose hash occurs twice or more."""
    hashes = np.concatenate([hashes for hashes, _rows in parts])
    rows = np.concatenate([rows for _hashes, rows in parts])
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    repeat = np.zeros(len(ordered), dtype=bool)
    repeat[1:] |= ordered[1:] == ordered[:-1]
    repeat[:-1] |= ordered[1:] == ordered[:-1]
    return rows[order[repeat]]


def _keys_at(frame: pd.DataFrame, positions: np.ndarray, integral: bool) -> list:
    """The ids (as the checked table has them) and their keys at ``positions``."""
    ids = column_types.firm_ids_as_integers(frame[FIRM_ID], integral).iloc[positions]
    return [ids, column_types.id_keys(ids).tolist()]


def _id_plan(summaries: list[dict]) -> str | None:
    """The firm ids' type over the whole file: float ids that are all whole numbers made
    integers (int64), integers beside float ids that are not kept as floats (float64)."""
    found = [summary["ids"] for summary in summaries if summary.get("ids")]
    floats = [integral for is_float, _is_int, integral in found if is_float]
    if not floats:
        return None
    if all(floats):
        return "int64"
    return "float64" if any(is_int for _f, is_int, _i in found) else None


def _duplicates(
    client: Any, answers: list[dict], step: int, plan: str | None, source: str
) -> tuple | None:
    """The duplicate firm ids of the whole file, found bucket by bucket on the workers."""
    kept = [answer["ids"] for answer in answers]
    buckets = max(1, min(len(kept), ID_BUCKETS))
    candidates = [
        client.submit(_repeated, *[client.submit(_bucket, ids, b) for ids in kept], pure=False)
        for b in range(buckets)
    ]
    rows = np.sort(np.concatenate(client.gather(candidates)))
    if not len(rows):
        return None
    firsts = np.array([answer["first_row"] for answer in answers], dtype=np.int64)
    part_of = np.searchsorted(firsts, rows - 1, side="right") - 1
    ids, keys = [], []
    for number in np.unique(part_of):
        here = rows[part_of == number] - 1 - firsts[number]
        found = client.submit(
            _keys_at, answers[number]["frame"], here, plan == "int64", pure=False
        ).result()
        ids.append(found[0])
        keys.extend(found[1])
    duplicated = pd.Series(keys, dtype="object").duplicated(keep=False).to_numpy()
    if not duplicated.any():  # hashes alike, ids not
        return None
    values = pd.concat(ids, ignore_index=True)
    if plan == "float64":
        values = values.astype("float64")
    error = column_types.duplicate_ids_error(
        rows[duplicated].tolist(), column_types.first_value(values, duplicated), file=source
    )
    return ((1, step, _rank("id", error.problem)), _parts(error))


def _category_plan(
    summaries: list[dict],
    column: str,
    step: int,
    source: str,
    reference: dict[str, object],
    category_rules: dict,
    notes: list[str],
    spellings: dict[str, dict[object, int]],
    plan: dict[str, Any],
) -> tuple | None:
    """The column's categories over the whole file from each partition's value counts (and
    declared categories), as ``column_types.to_category`` decides them on the whole column:
    spelling variants merged (the note and the merged spellings' firms here), the reference
    first. The error of a whole read where they are refused."""
    found = [summary[column] for summary in summaries if column in summary]
    declared = [part[0] for part in found if part[0] is not None]
    firms: dict[object, int] = {}
    for _declared, counts in found:
        for value, n in counts.items():
            firms[value] = firms.get(value, 0) + n
    renames: dict[object, object] = {}
    order = _ORDER["category"]
    try:
        if declared:
            whole = list(dict.fromkeys(c for part in declared for c in part))
            category_rules[column] = (
                [c.item() if isinstance(c, np.generic) else c for c in whole],
                reference.get(column),
            )
            sub = order.index("names that differ")
            column_types.refuse_spelling_variants(whole, column=column, file=source)
            categories = column_types.declared_categories(declared, [set(firms)])
        else:
            category_rules[column] = (None, reference.get(column))
            renames, note = column_types.spelling_merge(
                firms, column=column, file=source, spellings=spellings.setdefault(column, {})
            )
            notes.extend([note] if note else [])
            categories = column_types.sorted_categories(
                [
                    v.item() if isinstance(v, np.generic) else v
                    for v in dict.fromkeys(
                        renames.get(v, v) if isinstance(v, str) else v for v in firms
                    )
                ]
            )
        sub = order.index("names that differ ")
        categories = column_types.category_order(
            categories, reference.get(column), column=column, file=source
        )
    except InputError as error:
        if error.problem.startswith("reference"):
            sub = order.index("reference category not found")
        return ((1, step, sub), _parts(error))
    plan[column] = (renames, categories)
    return None


def _canonical(
    mapped: pd.DataFrame, before: int, header: Header, plan: dict[str, Any], source: str
) -> pd.DataFrame:
    """One partition's checked table (a task on a worker), with the whole file's decisions
    (``plan``: the ids' type, each category column's merges and categories): the rows of the
    table ``Survey.from_frame`` makes of the whole file, indexed by their positions there."""
    where = {"file": source, "first_row": before + 1}
    checked: dict[str, pd.Series] = {}
    for column, kind in header.steps(mapped.columns):
        if kind == "id":
            ids = column_types.firm_ids_as_integers(mapped[column], plan[column] == "int64")
            if plan[column] == "float64":
                ids = ids.astype("float64")
            checked[column] = ids
        elif kind == "category":
            renames, categories = plan[column]
            values, _declared = column_types.category_values(
                mapped[column], column=column, required=column == "region", **where
            )
            if renames:
                values = column_types.renamed(values, renames)
            checked[column] = column_types.as_category(values, categories, mapped[column])
        elif kind != "agrees":
            checked[column] = header.check(mapped, checked, column, kind, where)
    frame = pd.DataFrame(checked, copy=False)
    frame.index = pd.RangeIndex(before, before + len(frame))
    return frame


def _by_rank(error: tuple) -> tuple:
    return error[0]
