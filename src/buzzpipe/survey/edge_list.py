"""Edge-list surveys: validate firm-partner links, classify them into scales, derive exposure.

A link is classified against its firm's own region and country: another country is
``international``; the same country and region is ``regional``; the same country, another region
is ``national``. A survey without the regional scale (CIS-style) calls every own-country link
``national``. Where a partner is itself a surveyed firm, its missing region or country is taken
from the firms file. A link whose scale cannot be told leaves the matching collaboration answers
"don't know" (missing) rather than guessing.

Links arrive in batches (a whole frame is one batch): ``CollaborationCounts`` and
``ExposureCounts`` accumulate what each batch says per firm, so a links file of tens of millions
of rows is read in bounded memory and gives the same numbers as reading it whole.
"""

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey.column_types import (
    check_present,
    fold,
    id_keys,
    refuse_spelling_variants,
    row_error,
)
from buzzpipe.survey.schema import (
    FIRM_ID,
    GROUP_PARTNER_TYPE,
    LINK_COLUMNS,
    LINK_SCALE,
    PIPELINE_EXPOSURE,
    PIPELINE_EXPOSURE_UNKNOWN_SHARE,
    collab_column,
)


class FirmDirectory:
    """The surveyed firms as links see them: id key to position, each firm's region and country.

    Built from the firms' id, region and country columns as validated (``firm_ids`` may be raw
    ids: their keys are :func:`~buzzpipe.survey.column_types.id_keys`). The keys (a Python str
    per firm), their index and the regions' and countries' object arrays are made when links are
    first looked up, not before: under ``--engine dask`` the client only ships the directory to
    the workers, which look the links up, so the client never holds them (about 100 bytes a
    firm at its survey stage's peak).
    """

    def __init__(self, firm_ids: pd.Series, regions: pd.Series, countries: pd.Series) -> None:
        self._ids = firm_ids
        self._regions, self._countries = regions, countries
        self._keys: pd.Series | None = None
        self._index: pd.Index | None = None
        self._region_values: np.ndarray | None = None
        self._country_values: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def keys(self) -> pd.Series:
        """Each firm's id key (object dtype), in the firms' order."""
        if self._keys is None:
            self._keys = id_keys(self._ids)
        return self._keys

    @property
    def regions(self) -> np.ndarray:
        """Each firm's region as a key (object array; None where missing)."""
        if self._region_values is None:
            regions = id_keys(self._regions.astype("object"))
            self._region_values = regions.to_numpy(dtype="object")
        return self._region_values

    @property
    def countries(self) -> np.ndarray:
        """Each firm's country (object array)."""
        if self._country_values is None:
            self._country_values = self._countries.to_numpy(dtype="object")
        return self._country_values

    def positions(self, keys: pd.Series | np.ndarray) -> np.ndarray:
        """Each key's firm position, -1 where the key is no surveyed firm (or missing)."""
        if self._index is None:
            self._index = pd.Index(self.keys.to_numpy(dtype="object"), dtype="object")
        return self._index.get_indexer(np.asarray(keys, dtype="object"))

    def __reduce__(self) -> tuple:
        """Pickled compactly: the directory goes to every Dask worker (``dask_measures``). The
        columns travel as they were given (integer ids, categorical regions and countries: their
        buffers sent beside the pickle without a copy), the keys and the index made where the
        directory is unpickled. Ids held as Python objects travel as their keys in one Arrow text
        array, not as a Python str per firm pickled twice (for the keys and their index): that
        held about 90 bytes a firm on the client, once its survey stage's peak."""
        ids = self._ids
        if ids.dtype == object:
            import pyarrow as pa

            keys = pa.array(self.keys.to_numpy(dtype="object"), type=pa.large_string())
            ids = (keys, ids.index)
        return (_unpickled_directory, (ids, self._regions, self._countries))


def _unpickled_directory(ids: Any, regions: pd.Series, countries: pd.Series) -> FirmDirectory:
    """A :class:`FirmDirectory` from its pickled parts (``FirmDirectory.__reduce__``)."""
    if isinstance(ids, tuple):  # keys as Arrow text: str, None where a key is missing
        keys, index = ids
        ids = pd.Series(keys.to_numpy(zero_copy_only=False), index=index, dtype="object")
    return FirmDirectory(ids, regions, countries)


def validate_links(
    links: pd.DataFrame,
    firms: FirmDirectory,
    partner_types: tuple[str, ...],
    *,
    source: str,
    first_row: int = 1,
) -> pd.DataFrame:
    """The canonical link columns, checked: known firms, known partner types."""
    if not isinstance(links, pd.DataFrame):
        raise InputError("links are not a table", file=source, expected="a data frame of links")
    missing = [c for c in LINK_COLUMNS if c not in links.columns]
    if missing:
        raise InputError(
            "missing column",
            file=source,
            column=missing[0],
            expected="link columns " + ", ".join(LINK_COLUMNS),
        )
    result = links.loc[:, list(LINK_COLUMNS)].reset_index(drop=True).copy()
    firm = id_keys(result[FIRM_ID])
    check_present(
        firm.isna().to_numpy(),
        "link without a firm id",
        file=source,
        column=FIRM_ID,
        first_row=first_row,
        expected="the id of a surveyed firm",
    )
    unknown_firm = firms.positions(firm) < 0
    if unknown_firm.any():
        raise row_error(
            "link to an unknown firm",
            result[FIRM_ID],
            unknown_firm,
            file=source,
            column=FIRM_ID,
            first_row=first_row,
            expected="a firm id present in the firms file",
        )
    types = result["partner_type"].astype("object")
    types = types.where(types.notna(), None).map(lambda v: v.strip() if isinstance(v, str) else v)
    unknown_type = ~types.isin(set(partner_types)).to_numpy()
    if unknown_type.any():
        raise row_error(
            "unknown partner type",
            result["partner_type"],
            unknown_type,
            file=source,
            column="partner_type",
            first_row=first_row,
            expected="one of " + ", ".join(partner_types),
        )
    result["partner_type"] = types.astype("str")
    return result


Matched = dict[tuple[str, object, object], int]  # (column, as the links spell it, as the firms do)


def _match_spellings(
    values: np.ndarray, renames: dict[object, object], column: str, matched: Matched
) -> None:
    """Spell a links file's names as the firms file does (in place), counting the links so
    matched in ``matched`` (summed over batches and partitions; :func:`matched_notes`)."""
    for variant, known in renames.items():
        spelt = values == variant
        key = (column, variant, known)
        matched[key] = matched.get(key, 0) + int(spelt.sum())
        values[spelt] = known


def matched_notes(matched: Matched, source: str | None) -> list[str]:
    """One data note per column of what :func:`classify_links` matched, over all the batches
    or partitions of the links: "'bergen' read as 'Bergen' (12 links)"."""
    notes = []
    for column in dict.fromkeys(key[0] for key in sorted(matched, key=str)):
        shown = "; ".join(
            f"{variant!r} read as {known!r} ({links} link" + "s" * (links != 1) + ")"
            for (of, variant, known), links in sorted(matched.items(), key=lambda i: str(i[0][1]))
            if of == column
        )
        where = f"{source}, column {column!r}" if source else f"column {column!r}"
        notes.append(f"{where}: names spelt unlike the firms file's, matched to it: {shown}")
    return notes


def classify_links(
    links: pd.DataFrame,
    firms: FirmDirectory,
    *,
    scales: tuple[str, ...],
    source: str | None = None,
    matched: Matched | None = None,
) -> pd.DataFrame:
    """Per link: its scale (or missing) and which scales it could be when the scale is unknown.

    A partner region or country spelt as one of the firms file's names but for case, accents or
    spaces ("bergen" for "Bergen") is read as the firms file spells it and counted in
    ``matched`` (the same in every batch or partition: one category is never split); without
    ``matched`` it is refused, naming it.

    Returns a frame with the ``scale`` column, one boolean ``possible_<scale>`` column per scale
    and ``firm_position``, the link's firm's position in ``firms``.
    """
    firm_position = firms.positions(id_keys(links[FIRM_ID]))
    partner_position = firms.positions(id_keys(links["partner_id"]))
    own_region = firms.regions[firm_position]
    own_country = firms.countries[firm_position]
    partner_region = id_keys(links["partner_region"]).to_numpy(dtype="object", copy=True)
    partner_country = id_keys(links["partner_country"]).to_numpy(dtype="object", copy=True)
    # a surveyed partner's own file entries fill what the link leaves blank
    surveyed = partner_position >= 0
    for values, of_firm in ((partner_region, firms.regions), (partner_country, firms.countries)):
        blank = pd.isna(values) & surveyed
        values[blank] = of_firm[partner_position[blank]]

    for values, of_firm, column in (
        (partner_region, firms.regions, "partner_region"),
        (partner_country, firms.countries, "partner_country"),
    ):
        known = set(pd.unique(of_firm[pd.notna(of_firm)]))
        by_fold: dict[str, list[object]] = {}
        for name in sorted(known, key=str):
            by_fold.setdefault(fold(name), []).append(name)
        close = {v for v in set(pd.unique(values[pd.notna(values)])) - known if fold(v) in by_fold}
        one_known = {v for v in close if len(by_fold[fold(v)]) == 1}
        if matched is None or one_known != close:  # nowhere to count, or no one spelling
            listed = sorted(known, key=str)
            refuse_spelling_variants(close, column=column, file=source, known=listed)
        if one_known:  # "bergen" for the firms' "Bergen": the firms' spelling, counted
            renames = {v: by_fold[fold(v)][0] for v in one_known}
            _match_spellings(values, renames, column, matched)

    country_known = pd.notna(partner_country)
    region_known = pd.notna(partner_region)
    same_country = country_known & (partner_country == own_country)
    other_country = country_known & ~same_country
    same_region = region_known & (partner_region == own_region)
    has_regional = "regional" in scales

    scale = np.full(len(links), None, dtype=object)
    possible = {s: np.zeros(len(links), dtype=bool) for s in scales}
    if "international" in scales:
        scale[other_country] = "international"
    if has_regional:
        scale[same_country & same_region] = "regional"
        if "national" in scales:
            scale[same_country & region_known & ~same_region] = "national"
        # own country, region unknown: regional or national
        unknown_region = same_country & ~region_known
        possible["regional"] |= unknown_region
        if "national" in scales:
            possible["national"] |= unknown_region
        # country unknown but the same region: the same region implies the same country
        scale[~country_known & same_region] = "regional"
        unknown_all = ~country_known & ~same_region
    else:
        if "national" in scales:
            scale[same_country] = "national"
        unknown_all = ~country_known
    for s in scales:
        possible[s] |= unknown_all
    frame = pd.DataFrame({LINK_SCALE: pd.Series(scale, dtype="object")}, index=links.index)
    for s in scales:
        frame[f"possible_{s}"] = possible[s]
    frame["firm_position"] = firm_position
    return frame


class CollaborationCounts:
    """The collab_<scale>_<partner_type> answers that links imply, gathered batch by batch.

    1 where the firm has a link of that type at that scale; missing where it has only links of
    that type whose scale might be that one; 0 otherwise (a firm without links has no partners).
    """

    def __init__(
        self, n_firms: int, *, scales: tuple[str, ...], partner_types: tuple[str, ...]
    ) -> None:
        self.scales = scales
        self.partner_types = partner_types
        shape = (len(partner_types), len(scales), n_firms)
        self._yes = np.zeros(shape, dtype=bool)
        self._maybe = np.zeros(shape, dtype=bool)

    def add(self, links: pd.DataFrame, classified: pd.DataFrame) -> None:
        """Count one batch of validated links with its classification."""
        rows = classified["firm_position"].to_numpy()
        types = links["partner_type"].to_numpy(dtype="object")
        scale = classified[LINK_SCALE].to_numpy(dtype="object")
        for t, partner_type in enumerate(self.partner_types):
            of_type = types == partner_type
            for s, name in enumerate(self.scales):
                self._yes[t, s, rows[of_type & (scale == name)]] = True
                self._maybe[t, s, rows[of_type & classified[f"possible_{name}"].to_numpy()]] = True

    def matrix(self) -> pd.DataFrame:
        """The answers as Int8 columns, one row per firm in the directory's order.

        Made once the links are counted: the columns are the counts' own arrays (yes read as
        0/1 bytes, maybe narrowed to "maybe and not yes" in place), not copies, so a register's
        answers are held once (2 bytes a firm each) and not twice while they are made (the
        survey stage's peak at a million firms under --engine dask). Links added afterwards
        would change the answers made here.
        """
        index = pd.RangeIndex(self._yes.shape[2])
        columns = {}
        for t, partner_type in enumerate(self.partner_types):
            for s, scale in enumerate(self.scales):
                yes, maybe = self._yes[t, s], self._maybe[t, s]
                # 1 where yes, missing where only maybe, else 0: built as Int8 straight away
                # (no float column per answer) and not copied again into the frame
                np.greater(maybe, yes, out=maybe)  # maybe and not yes (booleans)
                answer = pd.arrays.IntegerArray(yes.view(np.int8), maybe)
                column = pd.Series(answer, index=index, copy=False)  # pandas 3 copies by default
                columns[collab_column(scale, partner_type)] = column
        return pd.DataFrame(columns, index=index, copy=False)


def answers_of_rows(
    cells: Iterable[dict],
    firms: int,
    rows: pd.Index,
    *,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
) -> pd.DataFrame:
    """:meth:`CollaborationCounts.matrix` at ``rows`` (consecutive positions of the ``firms``
    firms, as a frame's index), from the cells links set: each of ``cells`` holds the flat
    positions its links made "yes" and "maybe" in a count of every firm's answers
    (``partition_cells``). The same answers as the whole count's rows there, so each partition
    of the firm table takes its own on the Dask worker that holds it, and the client never
    holds the whole count (``Survey.keep_on``)."""
    start = int(rows[0]) if len(rows) else 0
    if len(rows) and not np.array_equal(np.asarray(rows), np.arange(start, start + len(rows))):
        raise ValueError("the rows of a partition are not consecutive firm positions")
    counts = CollaborationCounts(len(rows), scales=scales, partner_types=partner_types)
    for found in cells if len(rows) else ():
        for name in ("yes", "maybe"):
            target = getattr(counts, f"_{name}").reshape(-1, len(rows))
            positions = found[name]
            firm = positions % firms - start
            here = (firm >= 0) & (firm < len(rows))
            target[positions[here] // firms, firm[here]] = True
    matrix = counts.matrix()
    matrix.index = rows
    return matrix


# named local partners held in memory before they go to temporary files (16 bytes each)
SPILL_RECORDS = 262_144
SPILL_BLOCK_FIRMS = 4096  # firms per temporary file: what one step of ``result`` holds
_PAIR = np.dtype([("firm", "<i4"), ("partner", "<i4"), ("partner_hash", "<u8")])


class ExposureCounts:
    """Each firm's distinct local partners, gathered batch by batch for pipeline exposure.

    A named local partner is kept as one 16-byte record (firm, surveyed partner's position or -1,
    a 64-bit hash of an unsurveyed partner's id) until ``result``; past ``spill_records`` records
    they go to temporary files, one per block of firms, so memory stays bounded however long the
    links file. Partners without an id are counted at once (each is a partner of unknown status).
    """

    def __init__(
        self, firms: FirmDirectory | int, *, local_scale: str, spill_records: int | None = None
    ) -> None:
        # a number of firms where links are only added counted already (``add_partial``)
        self._firms: FirmDirectory | None = None if isinstance(firms, int) else firms
        self._n_firms = firms if isinstance(firms, int) else len(firms)
        self._local_scale = local_scale
        self._anonymous = np.zeros(self._n_firms, dtype="int64")
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._spill_records = spill_records or SPILL_RECORDS
        self._block_firms = SPILL_BLOCK_FIRMS
        self._spill: tempfile.TemporaryDirectory | None = None

    def add(self, links: pd.DataFrame, firm_position: np.ndarray | None = None) -> None:
        """Count one batch of links with their ``scale`` column (firm positions if known)."""
        local = (links[LINK_SCALE] == self._local_scale).to_numpy() & (
            links["partner_type"].to_numpy(dtype="object") != GROUP_PARTNER_TYPE
        )
        if firm_position is None:
            firm_position = self._firms.positions(id_keys(links[FIRM_ID]))
        firm = firm_position[local]
        partner = id_keys(links["partner_id"][local]).to_numpy(dtype="object")
        anonymous = pd.isna(partner)
        self._anonymous += np.bincount(firm[anonymous], minlength=self._n_firms)
        firm, partner = firm[~anonymous], partner[~anonymous]
        records = np.empty(len(firm), dtype=_PAIR)
        records["firm"] = firm
        records["partner"] = self._firms.positions(partner)
        unsurveyed = records["partner"] < 0
        records["partner_hash"] = 0
        if unsurveyed.any():
            records["partner_hash"][unsurveyed] = pd.util.hash_array(partner[unsurveyed])
        records = records[records["partner"] != records["firm"]]  # a firm is not its own partner
        self._buffer.append(records)
        self._buffered += len(records)
        if self._buffered > self._spill_records:
            self._write_spill()

    @property
    def local_scale(self) -> str:
        return self._local_scale

    def partial(self) -> tuple[np.ndarray, np.ndarray]:
        """What was added here, to be added to another count (a Dask partition's share): the
        distinct local-partner records and the partners without an id per firm."""
        records = np.unique(np.concatenate(self._buffer)) if self._buffer else np.empty(0, _PAIR)
        return records, self._anonymous

    def add_partial(self, records: np.ndarray, firms: np.ndarray, anonymous: np.ndarray) -> None:
        """Add another count's ``partial()`` (``anonymous`` partners of the firms ``firms``)."""
        self._anonymous[firms] += anonymous
        self._buffer.append(records)
        self._buffered += len(records)
        if self._buffered > self._spill_records:
            self._write_spill()

    def close(self) -> None:
        """No more links: let go of the firm directory (its id keys are large) until ``result``."""
        self._firms = None

    def _write_spill(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryDirectory(prefix="buzzpipe_exposure_")
        if not self._buffer:
            return
        buffer, self._buffer, self._buffered = self._buffer, [], 0
        while buffer:  # each batch's records in turn, let go once written
            self._spill_block_files(buffer.pop(0))

    def _spill_block_files(self, records: np.ndarray) -> None:
        """Append one batch's records to their blocks' files, in the batch's order within a
        block (the files are as if the buffer had been concatenated and stably sorted by block).
        A batch sorted by firm (a Dask partition's ``partial``) is cut where its blocks start,
        not sorted or copied: at a million firms that copy was the survey stage's peak."""
        if not len(records):
            return
        firm = records["firm"]
        if bool(np.all(firm[1:] >= firm[:-1])):
            ordered, size = firm, self._block_firms  # blocks start at multiples of the size
        else:
            block = firm // self._block_firms
            order = np.argsort(block, kind="stable")
            records, ordered, size = records[order], block[order], 1
        first, last = int(ordered[0]) // size, int(ordered[-1]) // size
        edges = np.searchsorted(ordered, np.arange(first, last + 2) * size)
        for block, start, stop in zip(range(first, last + 1), edges[:-1], edges[1:], strict=True):
            if stop > start:
                with open(Path(self._spill.name) / f"block_{block}.bin", "ab") as handle:
                    handle.write(records[start:stop].data)

    def _blocks(self) -> Iterator[np.ndarray]:
        """The records, one block of firms at a time (all in one when nothing was spilled)."""
        if self._spill is None:
            if self._buffer:
                yield np.concatenate(self._buffer)
            return
        self._write_spill()
        for path in sorted(Path(self._spill.name).iterdir()):
            yield np.fromfile(path, dtype=_PAIR)

    def result(self, has_pipeline: pd.Series) -> pd.DataFrame:
        """pipeline_exposure and its unknown share per firm (see ``pipeline_exposure``)."""
        exposure, unknown_share = self.shares(has_pipeline)
        return pd.DataFrame(
            {PIPELINE_EXPOSURE: exposure, PIPELINE_EXPOSURE_UNKNOWN_SHARE: unknown_share},
            copy=False,
        )

    def shares(self, has_pipeline: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`result`'s two columns as arrays of their own (float64, NaN for missing)."""
        status = has_pipeline.to_numpy(dtype="float64", na_value=np.nan)
        n = self._n_firms
        partners = self._anonymous.astype("float64")
        known = np.zeros(n)
        pipeline = np.zeros(n)
        for records in self._blocks():
            distinct = np.unique(records)  # sorted: by firm first
            if not len(distinct):
                continue
            surveyed = distinct["partner"] >= 0
            partner_status = np.full(len(distinct), np.nan)
            partner_status[surveyed] = status[distinct["partner"][surveyed]]
            # counted over the block's own firms (a spilled block's span), not over every firm
            # once per block: the same sums, added to the same firms
            low, high = int(distinct["firm"][0]), int(distinct["firm"][-1]) + 1
            firm, span = distinct["firm"] - low, slice(low, high)
            partners[span] += np.bincount(firm, minlength=high - low)
            known[span] += np.bincount(
                firm, weights=~np.isnan(partner_status), minlength=high - low
            )
            pipeline[span] += np.bincount(firm, weights=partner_status == 1, minlength=high - low)
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None
        # the shares made in place of the sums (each the same division as np.where's, missing
        # where its denominator is none): at a million firms the temporaries were the Dask
        # client's peak in its description stage
        with np.errstate(invalid="ignore", divide="ignore"):
            denominator = np.maximum(known, 1)
            exposure = np.divide(pipeline, denominator, out=pipeline)
            exposure[known <= 0] = np.nan
            np.maximum(partners, 1, out=denominator)
            unknown_share = np.subtract(partners, known, out=known)
            np.divide(unknown_share, denominator, out=unknown_share)
            unknown_share[partners <= 0] = np.nan
        return exposure, unknown_share


def exposure_of_rows(
    parts: Iterable[dict], status: pd.Series, rows: pd.Index, *, local_scale: str
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`ExposureCounts.shares` of the firms at ``rows`` (consecutive positions, as a
    frame's index) from the parts of the count that links partitions made (each a dict of its
    ``records`` and its partners without an id, ``firms`` and ``anonymous``, as
    :meth:`ExposureCounts.partial` gives them), ``status`` being every firm's status as a
    partner. The same shares as the whole count's at those firms (the same integer sums, the
    same divisions), so each partition of the firm table makes its own on its Dask worker."""
    start = int(rows[0]) if len(rows) else 0
    counts = ExposureCounts(len(rows), local_scale=local_scale, spill_records=2**62)
    stop = start + len(rows)
    for part in parts if len(rows) else ():
        records = part["records"]
        here = (records["firm"] >= start) & (records["firm"] < stop)
        records = records[here]
        records["firm"] -= start  # a copy (selected): positions within the rows
        firms = part["firms"]
        anonymous = (firms >= start) & (firms < stop)
        counts.add_partial(records, firms[anonymous] - start, part["anonymous"][anonymous])
    return counts.shares(status)


def pipeline_exposure(
    links: pd.DataFrame,
    firm_keys: pd.Series,
    has_pipeline: pd.Series,
    *,
    local_scale: str,
) -> pd.DataFrame:
    """Each firm's exposure to pipelines through its local partners.

    pipeline_exposure = share of the firm's distinct local partners (links at ``local_scale``,
    the firm's own business group left out) that are surveyed firms with at least one
    international partner, among those whose status is known. The partners whose status is not
    known (not surveyed, no id, or a missing answer) are reported as a share of all local
    partners in pipeline_exposure_unknown_share. Both are missing for a firm with no local partner.
    """
    no_place = pd.Series([None] * len(firm_keys), dtype="object")
    counts = ExposureCounts(FirmDirectory(firm_keys, no_place, no_place), local_scale=local_scale)
    counts.add(links)
    return counts.result(has_pipeline)
