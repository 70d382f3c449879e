"""The descriptive table a paper opens with, overall and by city-region.

Firms by region and industry; the share of firms collaborating at each scale, with each partner
type (at any scale, and scale by scale) and mean breadth; the regimes; innovation rates; the size
and ownership controls; pipeline exposure for edge-list surveys. Shares and means are over the
firms whose answer is known ("don't know" is left out of the denominator) and unweighted, as in
the published tables; with ``weighted=True`` they are population shares and means instead,
weighted by the survey's sampling ``weight`` as Stata's ``mean x [pweight=weight]`` weighs them
(sum of weight x value over the sum of weights, firms with a known answer), and the table adds
the sum of weights (the population the sample stands for). Counts of firms stay sample counts.

The table is built from sums, so a file can be described batch by batch in bounded memory
(``buzzpipe.survey.readers.describe_file`` streams files in batches of rows): only the firm ids
are kept whole, as 8-byte hashes, to find duplicates across batches. A survey held whole is
summed in steps of rows too, so the per-firm statistics never exist for all firms at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.estimate.exact_sums import ExactSum, group_sums
from buzzpipe.survey import column_types, measures
from buzzpipe.survey.schema import (
    CATEGORICAL_CONTROLS,
    FIRM_ID,
    NOVELTY,
    OUTCOMES,
    PIPELINE_EXPOSURE,
    PIPELINE_EXPOSURE_UNKNOWN_SHARE,
    REGIME,
    REGIMES,
    WEIGHT,
    any_column,
    breadth_column,
    collab_column,
)

if TYPE_CHECKING:  # a Survey describes itself through this module (Survey.describe)
    from buzzpipe.survey.model import Survey

ALL = "all firms"
SUM_OF_WEIGHTS = ("firms", "sum of weights (population)", "count")
ROWS_PER_STEP = 65_536  # firms summed at a time
_SCALE_WORDS = {
    "regional": "in the own city-region",
    "national": "elsewhere in the country",
    "international": "abroad",
}


class DescribeTable:
    """Accumulates sums over surveys (or batches of one file) and yields the table.

    ``weighted``: shares and means weighted by the sampling weight (Stata's pweight mean).
    """

    def __init__(self, *, weighted: bool = False) -> None:
        self.weighted = weighted
        self._rows: dict[tuple[str, str, str], None] = {}
        self._sums: dict[tuple[str, str, str], dict[object, list[ExactSum]]] = {}
        self._regions: dict[object, None] = {}
        self._industries: dict[object, None] = {}
        self._rules: dict[str, tuple[list | None, object]] = {}
        self._id_hashes: list[np.ndarray] = []
        self._chunked = False  # a whole survey described from its chunks (``add(chunks=)``)
        self._added = 0  # surveys (or batches) added
        self._source: str | None = None
        self._scale_note: str | None = None
        # firms of each spelling of a region or industry as the file spells it, over batches
        self._spellings: dict[str, dict[object, float]] = {c: {} for c in CATEGORICAL_CONTROLS}

    def add(self, survey: Survey, *, chunks: Any = None) -> None:
        """Add one survey (or one batch of a streamed file). ``chunks``: the survey's analysis
        frame as a chunk source (its partitions kept on a Dask cluster,
        ``StudyEngine.frame_source``): the sums by region are then made per chunk where it lies
        and tree-reduced, and only they come back, with the spellings' counts. The survey is
        then whole (its firm ids checked unique when it was read: ``Survey.from_frame``, or
        bucket by bucket on the workers, ``survey/dask_firms.py``): its ids are not hashed and
        brought here to be checked again (8 bytes a firm), and it is the table's one survey."""
        frame = survey.analysis_frame()
        # the frame's columns and types (no rows): on dask those of the partitions, the
        # client's frame holding no column
        typed = frame.iloc[:0] if chunks is None else chunks.head(0)
        self._source = self._source or survey.source
        if self.weighted and WEIGHT not in typed.columns:
            raise InputError(
                "no sampling weights for weighted shares",
                file=survey.source,
                column=WEIGHT,
                expected="a weight column (> 0), or shares without weights",
            )
        if self._chunked or (chunks is not None and self._added):
            raise RuntimeError("a survey kept on a cluster is described alone, not with others")
        self._chunked, self._added = chunks is not None, self._added + 1
        for column in CATEGORICAL_CONTROLS:
            self._rules.setdefault(column, survey.category_rules.get(column, (None, None)))
        if chunks is None:
            self._id_hashes.append(_id_hashes(frame[FIRM_ID]))
            counted = {column: _category_counts(frame, column) for column in self._spellings}
        else:  # made per chunk where it lies: the client's frame may lack the ids
            counted = chunks.map_reduce(
                _chunk_counts, tuple(self._spellings), columns=list(self._spellings)
            )
        labels = list(typed["region"].cat.categories)
        for label in labels:
            self._regions.setdefault(label, None)
        for label in typed["industry"].cat.categories:
            self._industries.setdefault(label, None)
        for column, firms in self._spellings.items():
            own = {label: float(n) for label, n in counted[column].items() if n > 0}
            own.update(survey.spellings.get(column, {}))  # a merged category's own spellings
            for name, n in own.items():
                firms[name] = firms.get(name, 0.0) + n
        shape = (survey.scales, survey.partner_types, len(labels), self.weighted)
        if chunks is not None:
            self._fold(chunks.map_reduce(_chunk_sums, shape), labels)
        else:
            for start in range(0, len(frame), ROWS_PER_STEP):
                self._fold(_region_sums(frame.iloc[start : start + ROWS_PER_STEP], *shape), labels)
        if survey.local_scale == "national" and "international" in survey.scales:
            self._scale_note = "no regional scale: local means own country (national)"

    def _fold(self, sums: dict[tuple[str, str, str], tuple], labels: list) -> None:
        """Add (sums, counts) by region position of each row of the table to the cells."""
        for key, (summed, counted) in sums.items():
            self._rows.setdefault(key, None)
            totals = self._sums.setdefault(key, {})
            for position, label in enumerate(labels):
                cell = totals.setdefault(label, [ExactSum(), ExactSum()])
                cell[0] += summed[position]
                cell[1] += counted[position]

    def result(self) -> pd.DataFrame:
        """The table: rows (section, statistic, measure); columns 'all firms' then each region."""
        if self._id_hashes:
            parts = self._id_hashes
            hashes = parts[0] if len(parts) == 1 else np.concatenate(parts)
            # a sorted copy and its neighbours compared (9 bytes a firm), not np.unique's
            # index and counts (about 60 bytes a firm at once: the Dask client's peak in its
            # description stage at a million firms); they are made only to name the rows
            ordered = np.sort(hashes)
            repeated = bool((ordered[1:] == ordered[:-1]).any())
            del ordered
            if repeated:
                unique, counts = np.unique(hashes, return_counts=True)
                duplicated = np.flatnonzero(np.isin(hashes, unique[counts > 1]))
                raise InputError(
                    "duplicate firm id",
                    file=self._source,
                    column=FIRM_ID,
                    rows=(duplicated + 1).tolist(),
                    expected="each firm id once",
                )
        notes = self._merge_spellings()
        regions = _ordered(list(self._regions), *self._rules.get("region", (None, None)))
        industries = _ordered(list(self._industries), *self._rules.get("industry", (None, None)))
        rows = list(self._rows)
        # industry rows follow the category order, not the order of first appearance
        industry_rows = [("firms by industry", str(label), "count") for label in industries]
        firm_rows = [r for r in rows if r[0] == "firms"]
        other_rows = [r for r in rows if r[0] not in ("firms", "firms by industry")]
        rows = firm_rows + [r for r in industry_rows if r in self._sums] + other_rows
        cells = []
        for key in rows:
            sums = self._sums[key]
            measure = key[2]
            total = sum(c[0] for c in sums.values())
            count = sum(c[1] for c in sums.values())
            line = [_finish(total, count, measure)]
            for region in regions:
                region_total, region_count = sums.get(region, [ExactSum(), ExactSum()])
                line.append(_finish(region_total, region_count, measure))
            cells.append(line)
        table = pd.DataFrame(
            np.array(cells, dtype="float64").reshape(len(rows), len(regions) + 1),
            index=pd.MultiIndex.from_tuples(rows, names=["section", "statistic", "measure"]),
            columns=[ALL, *[str(r) for r in regions]],
        )
        notes = ([self._scale_note] if self._scale_note else []) + notes
        if self.weighted:
            notes.append(f"shares and means weighted by {WEIGHT} (pweight); counts are firms")
        table.attrs["note"] = "; ".join(notes)
        return table

    def _merge_spellings(self) -> list[str]:
        """Names that differ only in case, accents or spaces as one category, as the whole file
        read at once would have them (a streamed file's batches each merge their own, so two
        batches can spell one region or industry two ways): under the spelling with the most
        firms in the file, their sums added, with the data notes a whole file's reading gives."""
        notes = []
        for column, known in (("region", self._regions), ("industry", self._industries)):
            firms = self._spellings[column]
            renames = column_types.spelling_renames(firms)
            if not renames:
                continue
            notes.append(
                column_types.spelling_note(renames, firms, column=column, file=self._source)
            )
            merge = {label: renames[label] for label in known if label in renames}
            if column == "region":  # the region columns: every row's cells by region
                for totals in self._sums.values():
                    _add_cells(totals, merge)
            else:  # the industry rows
                for variant, canonical in merge.items():
                    moved = self._sums.pop(_industry_row(variant), {})
                    self._rows.pop(_industry_row(variant), None)
                    self._rows.setdefault(_industry_row(canonical), None)
                    _add_cells(self._sums.setdefault(_industry_row(canonical), {}), {}, moved)
            for label in merge:
                known.pop(label)
            for canonical in merge.values():
                known.setdefault(canonical, None)
        return notes


def _add_cells(totals: dict, merge: dict, extra: dict | None = None) -> None:
    """Move the cells of ``merge``'s labels to their targets (sums and counts added), and add
    ``extra``'s cells to those of their own labels."""
    for variant, canonical in merge.items():
        cell = totals.pop(variant, None)
        if cell is not None:
            target = totals.setdefault(canonical, [ExactSum(), ExactSum()])
            target[0] += cell[0]
            target[1] += cell[1]
    for label, cell in (extra or {}).items():
        target = totals.setdefault(label, [ExactSum(), ExactSum()])
        target[0] += cell[0]
        target[1] += cell[1]


def _industry_row(label: object) -> tuple[str, str, str]:
    return ("firms by industry", str(label), "count")


def describe(survey: Survey, *, weighted: bool = False) -> pd.DataFrame:
    """The descriptive table a paper opens with: all firms, then each city-region.

    Parameters
    ----------
    survey : Survey
        A validated survey (:func:`buzzpipe.read_survey`, :func:`buzzpipe.synthesize`, ...).
    weighted : bool, default False
        Population shares and means, weighted by the survey's ``weight`` column as Stata's
        ``mean x [pweight=weight]`` weighs them, with a row for the sum of weights.

    Returns
    -------
    pandas.DataFrame
        Rows indexed by (section, statistic, measure), measure being count, share or mean;
        columns ``"all firms"`` then each region in category order. ``table.attrs["note"]``
        says what the reader must know (no regional scale, weights).

    Notes
    -----
    Shares and means are over the firms whose answer is known ("don't know" is left out of the
    denominator) and unweighted unless ``weighted``; counts are always sample counts. The table
    is summed in steps of 65,536 firms; a file too large to read whole can be described batch by
    batch with ``buzzpipe.survey.readers.describe_file`` (or ``buzzpipe describe FILE``).

    Examples
    --------
    >>> import buzzpipe as bp
    >>> survey = bp.synthesize("norway2010", seed=1, firms=500)
    >>> table = bp.describe(survey)
    >>> table.loc[("firms", "firms", "count")].tolist()
    [500.0, 291.0, 74.0, 66.0, 50.0, 19.0]
    >>> round(float(table.loc[("innovation", "product", "share"), "all firms"]), 3)
    0.452
    """
    table = DescribeTable(weighted=weighted)
    table.add(survey)
    return table.result()


def _region_sums(
    frame: pd.DataFrame,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
    regions: int,
    weighted: bool,
) -> dict[tuple[str, str, str], tuple[tuple[ExactSum, ...], tuple[ExactSum, ...]]]:
    """Per row of the table, (sum of the values, count of known answers) by region code over
    ``frame``'s firms; weighted: a pweight mean's sums (counts of firms stay counts)."""
    statistics = _statistics(frame, scales, partner_types)
    if weighted:
        weights = frame[WEIGHT].to_numpy(dtype="float64")
        firms = next(iter(statistics))  # the count of firms, then the sum of weights
        statistics = {firms: statistics.pop(firms), SUM_OF_WEIGHTS: weights, **statistics}
    keys = list(statistics)
    values = np.column_stack([statistics[key] for key in keys])
    known = ~np.isnan(values)
    codes = frame["region"].cat.codes.to_numpy()
    filled = np.where(known, values, 0.0)
    columns = []
    for column, key in enumerate(keys):
        # a pweight mean: sum of weight x value over the sum of weights where it is known;
        # counts stay counts of firms
        counted = known[:, column].astype("float64")
        summed = filled[:, column]
        if weighted and key[2] != "count":
            counted, summed = counted * weights, summed * weights
        columns += [summed, counted]
    # exact sums by region: the batches' or Dask partitions' sums add to the same cells bit for
    # bit whatever the chunking (whole-number columns, most of them, in one bincount)
    by_region = group_sums(columns, codes, regions)
    # tuples: chunks' results add entry by entry (sources.combine)
    sums = [
        tuple(by_region[region][column] for region in range(regions))
        for column in range(len(columns))
    ]
    return {key: (sums[2 * k], sums[2 * k + 1]) for k, key in enumerate(keys)}


def _chunk_sums(chunk: pd.DataFrame, where: Any, first_row: int, shape: tuple) -> dict:
    """:func:`_region_sums` of one chunk of the analysis frame (a task on a Dask worker)."""
    return _region_sums(chunk, *shape)


def _category_counts(frame: pd.DataFrame, column: str) -> dict[object, int]:
    """Firms of each category of ``column`` (every category, in their order)."""
    counts = frame[column].value_counts(sort=False)
    return {label: int(n) for label, n in counts.items()}


def _chunk_counts(chunk: pd.DataFrame, where: Any, first_row: int, columns: tuple) -> dict:
    """The firms of each category of ``columns`` in one chunk of the analysis frame (a task on
    a Dask worker): counts add over chunks."""
    return {column: _category_counts(chunk, column) for column in columns}


def _id_hashes(ids: pd.Series) -> np.ndarray:
    """8-byte hashes of firm ids as text, so 17 in one batch and "17" in another are one id.

    Made :data:`ROWS_PER_STEP` ids at a time: each id's text is a Python object while it is
    hashed, and made for every firm at once these objects left the resident set higher for the
    rest of the run, their memory kept by the allocator once freed (the Dask client's
    description stage at 150,000 firms: 31 MiB, about 200 bytes a firm, held into the study);
    one step's worth is reused from step to step. Each id's hash is its own, so the steps give
    the whole column's hashes."""
    hashes = np.empty(len(ids), dtype=np.uint64)
    for start in range(0, len(ids), ROWS_PER_STEP):
        step = ids.iloc[start : start + ROWS_PER_STEP]
        if pd.api.types.is_integer_dtype(step):
            keys = step.to_numpy(dtype="int64").astype(str).astype(object)
        else:
            keys = column_types.id_keys(step).to_numpy()
        # numpy's object array hashed as it is: as a pandas text column it would go through
        # Arrow, whose memory pool keeps the pages it freed
        hashes[start : start + len(step)] = pd.util.hash_array(keys)
    return hashes


def _finish(total: ExactSum, count: ExactSum, measure: str) -> float:
    """A cell of the table from its exact sums, each rounded once: a count, or a mean."""
    total, count = float(total), float(count)
    if measure == "count":
        return total
    return total / count if count > 0 else np.nan


def _ordered(labels: list, declared: list | None, reference: object) -> list:
    """One category order for all batches: declared order, or Stata's lowest code first."""
    if declared is not None:
        present = set(labels)
        ordered = [c for c in declared if c in present]
        ordered += [c for c in labels if c not in set(ordered)]
    else:
        ordered = column_types.sorted_categories(labels)
    if reference is not None:
        match = [c for c in ordered if column_types.id_key(c) == column_types.id_key(reference)]
        if not match and isinstance(reference, str):  # "oslo" for the merged "Oslo"
            folded = column_types.fold(reference)
            match = [c for c in ordered if isinstance(c, str) and column_types.fold(c) == folded]
        if match:
            ordered = match[:1] + [c for c in ordered if c != match[0]]
    return ordered


def _statistics(
    frame: pd.DataFrame, scales: tuple[str, ...], partner_types: tuple[str, ...]
) -> dict[tuple[str, str, str], np.ndarray]:
    """Per firm, the value each row of the table sums (NaN where the answer is unknown)."""
    ones = np.ones(len(frame))
    stats: dict[tuple[str, str, str], np.ndarray] = {("firms", "firms", "count"): ones}
    industry = frame["industry"].astype("object")
    for label in frame["industry"].cat.categories:
        stats[("firms by industry", str(label), "count")] = (industry == label).to_numpy(
            dtype="float64"
        )
    for scale in scales:
        flag = any_column(scale)
        if flag in frame.columns:
            stats[("collaboration", f"any partner {_SCALE_WORDS[scale]} ({scale})", "share")] = (
                measures.as_float(frame[flag])
            )
    for scale in scales:
        breadth = breadth_column(scale)
        if breadth in frame.columns:
            stats[("breadth (partner types, group left out)", scale, "mean")] = measures.as_float(
                frame[breadth]
            )
    for partner_type in partner_types:
        columns = [
            frame[collab_column(s, partner_type)]
            for s in scales
            if collab_column(s, partner_type) in frame.columns
        ]
        if columns:
            stats[("partner type, any scale", partner_type, "share")] = measures.as_float(
                measures.nullable_any(columns, frame.index)
            )
    for scale in scales:
        for partner_type in partner_types:
            column = collab_column(scale, partner_type)
            if column in frame.columns:
                stats[("partner type by scale", f"{scale}: {partner_type}", "share")] = (
                    measures.as_float(frame[column])
                )
    if REGIME in frame.columns:
        regime = frame[REGIME].astype("object")
        known = frame[REGIME].notna().to_numpy()
        for name in REGIMES:
            stats[("regime", name, "share")] = np.where(
                known, (regime == name).to_numpy(dtype="float64"), np.nan
            )
    for outcome in OUTCOMES:
        if outcome in frame.columns:
            stats[("innovation", outcome, "share")] = measures.as_float(frame[outcome])
    if NOVELTY in frame.columns:
        novelty = measures.as_float(frame[NOVELTY])
        stats[("innovation", "product new to the firm only", "share")] = np.where(
            np.isnan(novelty), np.nan, (novelty == 1).astype("float64")
        )
    for column, label in (("employees", "employees"), ("foreign_share", "foreign ownership")):
        if column not in frame.columns:
            continue  # foreign_share is optional
        stats[("controls", label, "mean")] = measures.as_float(frame[column])
    for column in (PIPELINE_EXPOSURE, PIPELINE_EXPOSURE_UNKNOWN_SHARE):
        if column in frame.columns:
            stats[("pipelines through local partners", column, "mean")] = frame[column].to_numpy(
                dtype="float64"
            )
    return stats


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text: counts whole, shares in percent, means to two decimals."""
    lines = []
    header = ["", *table.columns]
    body = []
    section = None
    for (sec, statistic, measure), row in table.iterrows():
        if sec != section:
            body.append([f"{sec}"] + [""] * len(table.columns))
            section = sec
        cells = []
        for value in row:
            if pd.isna(value):
                cells.append("-")
            elif measure == "count":
                cells.append(f"{value:,.0f}")
            elif measure == "share":
                cells.append(f"{100 * value:.1f}%")
            else:
                cells.append(f"{value:,.2f}")
        body.append([f"  {statistic}", *cells])
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    for r in [header, *body]:
        lines.append(
            "  ".join(
                str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                for i, c in enumerate(r)
            ).rstrip()
        )
    if table.attrs.get("note"):
        lines.append(f"note: {table.attrs['note']}")
    return "\n".join(lines) + "\n"
