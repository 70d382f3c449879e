"""The firm survey: validated canonical columns and the measures derived from them.

``Survey.from_frame`` is the one door every survey comes through (files, synthetic surveys,
simulations): it checks the columns against the model in DESIGN.md, raising an InputError that
names the file, column, rows, value and expectation, and never modifies the caller's frame.
"""

import dataclasses
import functools
from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingType
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey import column_types, edge_list, measures
from buzzpipe.survey.schema import (
    CATEGORICAL_CONTROLS,
    COUNTRY,
    FIRM_ID,
    GROUP_PARTNER_TYPE,
    LINK_SCALE,
    NOVELTY,
    OPTIONAL_CONTROLS,
    OUTCOMES,
    PARTNER_TYPES,
    PIPELINE_EXPOSURE,
    PIPELINE_EXPOSURE_UNKNOWN_SHARE,
    REGIME,
    REQUIRED_CONTROLS,
    REQUIRED_OUTCOMES,
    SCALES,
    WEIGHT,
    any_column,
    breadth_column,
    breadth_scale,
    parse_collab_column,
)

# expectation and range of each numeric control: (low, high, low inclusive, expectation)
_NUMERIC_RULES: dict[str, tuple[float | None, float | None, bool, str]] = {
    "employees": (0.0, None, False, "a number of employees > 0"),
    "foreign_share": (
        0.0,
        1.0,
        True,
        "a share in [0, 1] (percent 0-100: map the column with percent = true)",
    ),
    "firm_age": (0.0, None, True, "an age in years >= 0"),
    "education": (0.0, 1.0, True, "a share of staff in [0, 1]"),
    "openness": (None, None, True, "a number"),
    WEIGHT: (0.0, None, False, "a sampling weight > 0"),
}


def _order_scales(found: set[str]) -> tuple[str, ...]:
    return tuple(s for s in SCALES if s in found)


def _order_partner_types(found: list[str]) -> tuple[str, ...]:
    known = [t for t in PARTNER_TYPES if t in found]
    extra = [t for t in dict.fromkeys(found) if t not in PARTNER_TYPES]
    return tuple(known + extra)


class Survey:
    """A validated firm survey in the canonical schema: firms, optional links, derived measures.

    Parameters
    ----------
    firms, links, scales, partner_types, reference, source, category_rules, exposure, notes,
    spellings
        Filled in by :meth:`from_frame`, which validates them; the constructor trusts its
        arguments and is not for users.

    Notes
    -----
    Build a Survey with :meth:`Survey.from_frame` (a DataFrame in the canonical columns, optional
    links), :func:`buzzpipe.read_survey`, :func:`buzzpipe.read_edge_list` or
    :func:`buzzpipe.synthesize`. ``firms`` holds the validated columns, ``analysis_frame()`` adds
    breadth per scale (group left out), ``any_<scale>``, ``regime``, ``product_novelty`` and, for
    edge lists, ``pipeline_exposure``; ``describe()`` is :func:`buzzpipe.describe`. The canonical
    columns and measures are described in the README ("The data layer").

    Examples
    --------
    >>> import pandas as pd
    >>> import buzzpipe as bp
    >>> firms = pd.DataFrame({
    ...     "firm_id": [1, 2, 3], "region": ["Oslo", "Bergen", "Oslo"],
    ...     "industry": ["ict", "ict", "retail"], "employees": [12, 40, 230],
    ...     "foreign_share": [0.0, 0.5, 1.0], "product": [1, 0, 1],
    ...     "collab_regional_suppliers": [1, 0, 1], "collab_international_suppliers": [0, 0, 1],
    ... })
    >>> survey = bp.Survey.from_frame(firms, reference={"region": "Oslo"})
    >>> survey.scales
    ('regional', 'international')
    >>> survey.analysis_frame()[["breadth_regional", "breadth_international", "regime"]]
       breadth_regional  breadth_international      regime
    0                 1                      0  local_only
    1                 0                      0        none
    2                 1                      1        both
    """

    def __init__(
        self,
        firms: pd.DataFrame | None,
        links: pd.DataFrame | None,
        *,
        scales: tuple[str, ...],
        partner_types: tuple[str, ...],
        reference: dict[str, object],
        source: str,
        category_rules: dict[str, tuple[list | None, object]] | None = None,
        exposure: edge_list.ExposureCounts | None = None,
        notes: list[str] | None = None,
        spellings: dict[str, dict[object, int]] | None = None,
        collaboration: Any = None,
        parts: Any = None,
    ) -> None:
        # use Survey.from_frame: this constructor trusts its arguments
        self._firms: pd.DataFrame | None = firms  # None once kept on Dask workers (keep_on)
        # or the firm table's checked partitions on the Dask workers, as a Parquet file was read
        # there (survey/dask_firms.FirmsOnWorkers; ``firms`` is then None)
        self._parts = parts
        # an edge-list survey's collaboration answers on the Dask workers (survey/dask_measures'
        # CellsOnWorkers), not yet columns of the firm table: added to it when it is read here
        self._collaboration = collaboration
        self._firm_count = len(firms) if firms is not None else len(parts)
        self._exposure = exposure  # local partners counted from the links, for pipeline exposure
        # per categorical column: (declared category order or None, reference asked for or None),
        # so that batches of one streamed file can be put back in one order
        self.category_rules = category_rules or {}
        self._links = links
        self.scales = scales
        self.partner_types = partner_types
        self.reference = reference
        self.source = source
        # what reading did that the reader should know (spelling variants merged, ...)
        self.notes: list[str] = list(dict.fromkeys(notes or []))
        # per categorical column, the firms of each spelling merged into one category (so that
        # batches of one streamed file can be merged as the whole file would be)
        self.spellings: dict[str, dict[object, int]] = spellings or {}
        self._analysis: pd.DataFrame | None = None

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_frame(
        cls,
        firms: pd.DataFrame,
        links: pd.DataFrame | None = None,
        *,
        reference: MappingType[str, object] | None = None,
        source: str = "<data frame>",
        scales: tuple[str, ...] | None = None,
        partner_types: tuple[str, ...] | None = None,
        home_country: str | None = None,
        links_source: str | None = None,
        first_row: int = 1,
        link_batches: Iterable[tuple[pd.DataFrame, int]] | None = None,
    ) -> "Survey":
        """Validate firms (and optional links) in the canonical schema and build a Survey.

        ``reference`` names the reference category of region or industry (default: the lowest
        code / first declared category). ``home_country`` is the country of every firm without a
        ``country`` column, needed to classify links. ``first_row`` numbers the first data row
        in error messages (a streamed file passes its batch offset). ``link_batches`` gives the
        links instead as (frame, number of its first row) batches, counted one by one and not
        kept (``links`` is then None): a links file too large to hold gives the same survey.
        """
        if not isinstance(firms, pd.DataFrame):
            raise InputError("firms are not a table", file=source, expected="a data frame")
        if len(firms) == 0:
            raise InputError("no firms", file=source, expected="at least one row of firm data")
        raw = firms.set_axis([str(c) for c in firms.columns], axis=1).reset_index(drop=True)
        reference = dict(reference or {})
        links_source = links_source or source
        if links is not None and link_batches is not None:
            raise InputError("links given twice", file=source, expected="a frame or batches")
        if links is not None:
            link_batches, keep_links = [(links, 1)], True
        else:
            keep_links = False
        header = Header.of(
            list(raw.columns),
            source=source,
            scales=scales,
            partner_types=partner_types,
            edge_list=link_batches is not None,
        )
        scales, partner_types = header.scales, header.partner_types

        checked: dict[str, pd.Series] = {}
        where = {"file": source, "first_row": first_row}
        category_rules = {
            column: (
                [c.item() if isinstance(c, np.generic) else c for c in raw[column].cat.categories]
                if isinstance(raw[column].dtype, pd.CategoricalDtype)
                else None,
                reference.get(column),
            )
            for column in CATEGORICAL_CONTROLS
        }
        notes: list[str] = []
        spellings: dict[str, dict[object, int]] = {}
        for column, kind in header.steps(raw.columns):
            if kind == "id":
                checked[column] = column_types.to_firm_id(raw[column], **where)
            elif kind == "category":
                checked[column] = column_types.to_category(
                    raw[column],
                    column=column,
                    reference=reference.get(column),
                    required=column == "region",
                    notes=notes,
                    spellings=spellings.setdefault(column, {}),
                    **where,
                )
            elif kind != "agrees":
                checked[column] = header.check(raw, checked, column, kind, where)
        # the checked columns themselves, not a copy of them all (copy on write keeps the
        # caller's frame as it is): at scale the copy was a validated table's worth at once
        canonical = pd.DataFrame(checked, copy=False)
        del checked
        header.check_agreement(canonical, where)

        for column in CATEGORICAL_CONTROLS:
            categories = canonical[column].cat.categories
            if len(categories):
                first = categories[0]
                reference[column] = first.item() if isinstance(first, np.generic) else first

        canonical_links, exposure, collaboration = None, None, None
        if link_batches is not None:
            canonical, canonical_links, exposure, collaboration = _add_links(
                canonical,
                link_batches,
                keep=keep_links,
                scales=scales,
                partner_types=partner_types,
                home_country=home_country,
                source=source,
                links_source=links_source,
                notes=notes,
            )
        return cls(
            canonical,
            canonical_links,
            scales=scales,
            partner_types=partner_types,
            reference=reference,
            source=source,
            category_rules=category_rules,
            exposure=exposure,
            notes=notes,
            spellings={column: found for column, found in spellings.items() if found},
            collaboration=collaboration,
        )

    @classmethod
    def on_workers(
        cls,
        read: Any,
        *,
        link_batches: Any = None,
        links_source: str | None = None,
        home_country: str | None = None,
    ) -> "Survey":
        """The Survey of a firms file read and checked on Dask workers, its table kept there in
        partitions (``survey/dask_firms.read_firms_on_dask``: ``read``), with the links of
        ``link_batches`` (``DaskLinks``) classified there against a firm directory made there
        from those partitions: the survey :meth:`from_frame` makes of the file read whole, no
        firm table held here."""
        header, notes, collaboration = read.header, list(read.notes), None
        if link_batches is not None:
            directory = read.parts.directory(home_country, read.source)
            matched: edge_list.Matched = {}
            collaboration = link_batches.count_links(
                directory,
                _exposure_scale(header.scales),
                scales=header.scales,
                partner_types=header.partner_types,
                source=links_source,
                matched=matched,
            )
            directory.release()
            if matched:
                notes.extend(edge_list.matched_notes(matched, links_source))
        return cls(
            None,
            None,
            scales=header.scales,
            partner_types=header.partner_types,
            reference=read.reference,
            source=read.source,
            category_rules=read.category_rules,
            notes=notes,
            spellings={column: found for column, found in read.spellings.items() if found},
            collaboration=collaboration,
            parts=read.parts,
        )

    # --- views --------------------------------------------------------------------------------

    @property
    def firms(self) -> pd.DataFrame:
        """The validated canonical firm columns (a copy: changing it changes nothing here)."""
        if self._firms is None and self._parts is None:
            raise RuntimeError(
                "the firm table is on the Dask workers (Survey.keep_on): read analysis_frame()"
            )
        return self._firm_table().copy(deep=False)  # copy on write: the caller's own

    def _firm_table(self) -> pd.DataFrame:
        """The firm table with its collaboration answers: those kept on the Dask workers
        (``read_edge_list(client=)``) are gathered and added to it here, once, as is a table
        whose partitions were read and kept there (asked for here: gathered)."""
        if self._parts is not None:
            self._firms, self._parts = self._parts.gather(), None
        if self._collaboration is not None:
            matrix = self._collaboration.counts().matrix()
            matrix.index = self._firms.index
            self._firms = pd.concat([self._firms, matrix], axis=1)
            if self._collaboration.local_scale is not None:
                self._exposure = self._collaboration.exposure_counts()
            self._collaboration = None
        return self._firms

    @property
    def links(self) -> pd.DataFrame | None:
        """The canonical link columns plus each link's ``scale`` (None for a firm-level survey)."""
        return None if self._links is None else self._links.copy()

    @property
    def local_scale(self) -> str | None:
        """The scale that counts as local in regimes: regional, or national where a survey lacks
        the regional scale (harmonised CIS data: own country versus abroad)."""
        return _local_scale(self.scales)

    def __len__(self) -> int:
        return self._firm_count

    def __repr__(self) -> str:
        return (
            f"Survey({len(self)} firms from {self.source!r}, scales {', '.join(self.scales)}, "
            f"{len(self.partner_types)} partner types)"
        )

    def analysis_frame(self) -> pd.DataFrame:
        """Firms plus the derived measures the models use.

        breadth_<scale> (group left out), breadth_<scale>_with_group, any_<scale>, regime
        (local = any partner at ``local_scale``, global = any international partner; absent when
        either scale is missing), product_novelty (with new_to_market), and for edge-list surveys
        pipeline_exposure
        and pipeline_exposure_unknown_share. Categorical columns have the reference first.
        """
        if self._analysis is None:
            self._analysis = self._derive()
        return self._analysis.copy(deep=False)  # copy on write: the caller's own

    def _derive(self) -> pd.DataFrame:
        frame = derived_measures(self._firm_table(), self.scales, self.partner_types)
        if self._exposure is not None:
            shares = self._exposure.shares(frame[any_column("international")])
            # counted once (its spilled records are gone after result): its per-firm counts and
            # kept records are let go, the frame being derived once
            self._exposure = None
            for column, values in zip(EXPOSURE_COLUMNS, shares, strict=True):
                # by position, and not copied again (pandas 3 copies an array set as a column)
                frame[column] = pd.Series(values, index=frame.index, copy=False)
        return frame

    def keep_on(self, engine: Any) -> None:
        """The analysis frame derived on the Dask workers of ``engine`` (a ``StudyEngine`` on
        dask) and kept there (``StudyEngine.keep_derived``), and this survey's firm-level data
        let go here: the firm table goes to the workers in partitions, each partition's
        measures are made there (:func:`derived_partition`, row by row as :meth:`_derive` makes
        them), and only the frame's length comes back: :meth:`analysis_frame` returns a frame
        of no column from then on (the study reads the columns through the engine, on the
        workers). Pipeline exposure reads every firm's international partners, so its
        shares are made here from the exposure counts and sent with the firm table.

        Why: derived here and held by the survey for the whole run, the 44-column frame (135
        bytes a firm, with the firm table's columns it shares) was the Dask client's largest
        firm-level holder from the survey stage to the end. On any other engine (memory,
        stream) nothing is kept elsewhere and the survey keeps its data: the frame is derived
        here when asked, as before."""
        if getattr(engine, "name", None) != "dask":
            return
        collaboration, cells = self._collaboration, ()
        derive = functools.partial(
            derived_partition, scales=self.scales, partner_types=self.partner_types
        )
        if collaboration is not None:  # each partition's answers made on its worker
            cells = tuple(collaboration.futures)
            derive = functools.partial(derive, firms=collaboration.firms, cells=len(cells))
            if collaboration.local_scale is not None:  # and its pipeline exposure, there too
                status = collaboration.status_blocks(
                    STATUS_BLOCK, _international_partners, self.partner_types
                )
                cells = (*cells, *status)
                derive = functools.partial(derive, local_scale=collaboration.local_scale)
        # the table passed as the engine's only reference to it: let go there once it is sent
        self._analysis = engine.keep_derived(self._table_to_send(), derive, inputs=cells)
        if collaboration is not None:  # the answers are the kept frame's now
            collaboration.release()
            self._collaboration = None

    def _table_to_send(self) -> Any:
        """The firm table, with pipeline exposure's shares where the links gave local partners,
        taken from this survey (which holds it no more). A frame derived here already is sent
        as it is (its measures are made again, the same, on the workers); a table read on the
        workers is sent as its partitions there (``FirmsOnWorkers``), never a table here."""
        if self._parts is not None and self._analysis is None:
            parts, self._parts = self._parts, None
            return parts
        if self._firms is None:
            raise RuntimeError("the analysis frame is kept on the workers already")
        if self._analysis is not None:
            table, self._analysis, self._firms = self._analysis, None, None
            return table
        table, self._firms = self._firms, None
        if self._exposure is not None:  # counted here (with answers kept on the workers: none)
            status = _international_partners(table, self.partner_types)
            shares = self._exposure.shares(status)
            self._exposure = None  # counted once, as in _derive
            table = table.copy(deep=False)  # copy on write: the firm table's columns not copied
            for column, values in zip(EXPOSURE_COLUMNS, shares, strict=True):
                table[column] = pd.Series(values, index=table.index, copy=False)
        return table

    def describe(self, *, weighted: bool = False) -> pd.DataFrame:
        """The descriptive table of this survey: :func:`buzzpipe.describe` (see it)."""
        from buzzpipe.survey.describe import describe

        return describe(self, weighted=weighted)


@dataclasses.dataclass(frozen=True)
class Header:
    """What a firm table's column names say (``Survey.from_frame`` checks them first): the
    collaboration and breadth columns, the scales and partner types, and the order in which
    its columns are checked row by row (:meth:`steps`), the same for a table read whole and
    for each partition of a file read on Dask workers (``survey/dask_firms.py``)."""

    collab_names: tuple[str, ...]
    parsed: dict[str, tuple[str, str]]
    given_breadth: dict[str, tuple[str, bool]]
    scales: tuple[str, ...]
    partner_types: tuple[str, ...]

    @classmethod
    def of(
        cls,
        names: list[str],
        *,
        source: str,
        scales: tuple[str, ...] | None,
        partner_types: tuple[str, ...] | None,
        edge_list: bool,
    ) -> "Header":
        """The header of a table with columns ``names``: problems with them are refused."""
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise InputError(
                "duplicate column name", file=source, column=duplicated[0], expected="unique names"
            )
        for column in (FIRM_ID, *REQUIRED_CONTROLS, *REQUIRED_OUTCOMES):
            if column not in names:
                raise InputError(
                    "missing column",
                    file=source,
                    column=column,
                    expected="the survey's required columns: "
                    + ", ".join((FIRM_ID, *REQUIRED_CONTROLS, *REQUIRED_OUTCOMES))
                    + " (a mapping file can name your own columns)",
                )
        collab_names = [n for n in names if n.startswith("collab_")]
        breadth_names = [n for n in names if n.startswith("breadth_")]
        parsed: dict[str, tuple[str, str]] = _parse_names(
            collab_names,
            parse_collab_column,
            "cannot read scale and partner type from column name",
            "collab_<scale>_<partner_type>",
            source,
        )
        given_breadth: dict[str, tuple[str, bool]] = _parse_names(
            breadth_names,
            breadth_scale,
            "cannot read the scale from column name",
            "breadth_<scale> or breadth_<scale>_with_group",
            source,
        )
        if edge_list and (collab_names or breadth_names):
            raise InputError(
                "an edge-list survey takes collaboration from its links, not from the firms file",
                file=source,
                column=(collab_names or breadth_names)[0],
                expected="no collab_ or breadth_ columns beside a links file",
            )
        found_scales = {s for s, _ in parsed.values()} | {s for s, _ in given_breadth.values()}
        if scales is None:
            scales = _order_scales(found_scales) if not edge_list else SCALES
        scales = tuple(scales)
        _check_named(
            [(n, s) for n, (s, _) in [*parsed.items(), *given_breadth.items()]],
            scales,
            "unknown scale in column name",
            "one of the survey's scales: ",
            source,
        )
        bad_scales = [s for s in scales if s not in SCALES]
        if bad_scales:
            raise InputError(
                "unknown scale", file=source, value=bad_scales[0], expected=", ".join(SCALES)
            )
        if partner_types is None:
            partner_types = (
                _order_partner_types([t for _, t in parsed.values()])
                if not edge_list
                else PARTNER_TYPES
            )
        partner_types = tuple(partner_types)
        _check_named(
            [(n, t) for n, (_, t) in parsed.items()],
            partner_types,
            "unknown partner type in column name",
            "one of ",
            source,
        )
        if not edge_list and not scales:
            raise InputError(
                "no collaboration columns",
                file=source,
                expected="collab_<scale>_<partner_type> or breadth_<scale> columns, "
                "or a links file",
            )
        return cls(tuple(collab_names), parsed, given_breadth, scales, partner_types)

    def steps(self, columns: Iterable[str]) -> list[tuple[str, str]]:
        """(column, kind of check) in the order the columns are checked: the firm id, the
        categories, the numbers, the country, the outcomes, new to the market, the
        collaboration answers, the breadth counts, and last each breadth's agreement with the
        answers (made from the checked columns, :meth:`check_agreement`)."""
        present = set(columns)
        numbers = ("employees", "foreign_share", *OPTIONAL_CONTROLS, WEIGHT)
        return [
            (FIRM_ID, "id"),
            *((column, "category") for column in CATEGORICAL_CONTROLS),
            *((column, "number") for column in numbers if column in present),
            *([(COUNTRY, "country")] if COUNTRY in present else []),
            *((column, "binary") for column in OUTCOMES if column in present),
            *([("new_to_market", "novelty")] if "new_to_market" in present else []),
            *((name, "binary") for name in self.collab_names),
            *((name, "count") for name in self.given_breadth),
            *((name, "agrees") for name in self.given_breadth),
        ]

    def check(
        self,
        raw: pd.DataFrame,
        checked: dict[str, pd.Series],
        column: str,
        kind: str,
        where: dict[str, Any],
    ) -> pd.Series:
        """One column checked row by row (not the id, categories or breadth's agreement): the
        column in the model's type; ``checked``, the columns checked before it."""
        if kind == "number":
            low, high, inclusive, expected = _NUMERIC_RULES[column]
            return column_types.to_number_in_range(
                raw[column],
                column=column,
                low=low,
                high=high,
                low_inclusive=inclusive,
                required=column == WEIGHT,
                expected=expected,
                **where,
            )
        if kind == "country":
            country = column_types.id_keys(raw[COUNTRY])
            return pd.Series(country.to_numpy(), dtype="str").where(
                country.notna().to_numpy(), None
            )
        if kind == "binary":
            return column_types.to_binary(raw[column], column=column, **where)
        if kind == "novelty":
            answers = column_types.to_binary(raw[column], column=column, **where)
            impossible = (answers == 1).fillna(False).to_numpy() & (checked["product"] == 0).fillna(
                False
            ).to_numpy()
            if impossible.any():
                raise column_types.row_error(
                    "new to the market without a product innovation",
                    answers,
                    impossible,
                    column="new_to_market",
                    expected="new_to_market = 1 only where product = 1",
                    **where,
                )
            return answers
        if kind == "count":
            scale, with_group = self.given_breadth[column]
            types_here = [t for t in self.partner_types if with_group or t != GROUP_PARTNER_TYPE]
            most = len(types_here) if any(s == scale for s, _ in self.parsed.values()) else None
            return column_types.to_count(raw[column], column=column, most=most, **where)
        raise ValueError(f"no row check of kind {kind!r}")

    def check_agreement(self, canonical: pd.DataFrame, where: dict[str, Any]) -> None:
        """A given breadth must be a count the collaboration answers allow (don't know =
        either)."""
        for name, (scale, with_group) in self.given_breadth.items():
            counts = measures.yes_and_unknown(
                canonical, scale, self.partner_types, with_group=with_group
            )
            if counts is None:
                continue
            yes, unknown = counts
            given = measures.as_float(canonical[name])
            disagree = ~np.isnan(given) & ((given < yes) | (given > yes + unknown))
            if disagree.any():
                row = int(np.flatnonzero(disagree)[0])
                raise InputError(
                    "breadth disagrees with the collaboration columns",
                    file=where["file"],
                    column=name,
                    rows=column_types.bad_rows(disagree, where["first_row"]),
                    value=int(given[row]),
                    expected=f"the number of collab_{scale}_* answers that are 1 "
                    f"({int(yes[row])} in the first such row"
                    + (", group left out)" if not with_group else ")"),
                )


def _parse_names(
    names: list[str], parse: Callable[[str], tuple | None], problem: str, expected: str, source: str
) -> dict[str, tuple]:
    """Each column name split by ``parse``; a name it cannot split is an error."""
    parsed = {}
    for name in names:
        parts = parse(name)
        if parts is None:
            raise InputError(problem, file=source, column=name, expected=expected)
        parsed[name] = parts
    return parsed


def _check_named(
    named: list[tuple[str, str]], allowed: tuple[str, ...], problem: str, lead: str, source: str
) -> None:
    """Each (column, name read from it) must name one of ``allowed``."""
    for column, name in named:
        if name not in allowed:
            raise InputError(
                problem, file=source, column=column, value=name, expected=lead + ", ".join(allowed)
            )


def _local_scale(scales: tuple[str, ...]) -> str | None:
    return next((s for s in ("regional", "national") if s in scales), None)


def _exposure_scale(scales: tuple[str, ...]) -> str | None:
    """The local scale pipeline exposure counts partners at; None where the survey has no local
    and international scales to relate (no pipeline exposure)."""
    local = _local_scale(scales)
    if local is None or local == "international" or "international" not in scales:
        return None
    return local


# the columns pipeline exposure adds, last in the analysis frame
EXPOSURE_COLUMNS = (PIPELINE_EXPOSURE, PIPELINE_EXPOSURE_UNKNOWN_SHARE)

# firms per block whose status as a partner (any international partner) is made on a Dask
# worker from the answers kept there, for pipeline exposure (Survey.keep_on)
STATUS_BLOCK = 262_144


def derived_measures(
    firms: pd.DataFrame, scales: tuple[str, ...], partner_types: tuple[str, ...]
) -> pd.DataFrame:
    """``firms`` (the validated firm table, or rows of it) plus the measures each firm's own
    answers give (``Survey.analysis_frame``'s documentation: breadth per scale, any partner,
    regime, product novelty; not pipeline exposure, which reads other firms' answers). Row by
    row: the measures of rows are those of the whole table at those rows, with the same types
    (categories fixed, not read from the rows), so the Dask workers make them per partition."""
    frame = firms.copy(deep=False)
    for scale in scales:
        given = breadth_column(scale)
        breadth = _breadth(frame, scale, partner_types)
        if breadth is None:
            continue
        if given not in frame.columns:
            frame[given] = breadth
        with_group = breadth_column(scale, with_group=True)
        if with_group not in frame.columns:
            counted = measures.breadth_from_collaboration(
                frame, scale, partner_types, with_group=True
            )
            if counted is not None:
                frame[with_group] = counted
        frame[any_column(scale)] = measures.any_partner(breadth)
    local = _local_scale(scales)
    if local is not None and "international" in scales and local != "international":
        local_flag, global_flag = any_column(local), any_column("international")
        if local_flag in frame.columns and global_flag in frame.columns:
            frame[REGIME] = measures.regime(frame[local_flag], frame[global_flag])
    if "new_to_market" in frame.columns:
        frame[NOVELTY] = measures.product_novelty(frame["product"], frame["new_to_market"])
    return frame


def derived_partition(
    part: pd.DataFrame,
    *inputs: Any,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
    firms: int | None = None,
    cells: int = 0,
    local_scale: str | None = None,
) -> pd.DataFrame:
    """:func:`derived_measures` of one partition of the firm table (a task on a Dask worker),
    with the pipeline exposure shares sent beside it (``Survey.keep_on``) moved last, where
    ``Survey.analysis_frame`` has them. With ``firms`` (the survey's number of firms), the
    partition's collaboration answers are made first from the first ``cells`` of ``inputs``,
    the cells an edge-list survey's links set (``edge_list.answers_of_rows``; its rows are firm
    positions), after the firm table's columns as ``Survey.from_frame`` adds them; with
    ``local_scale``, its pipeline exposure last, from the local partners kept with the cells
    and every firm's status as a partner (the rest of ``inputs``, blocks of firms in order:
    ``edge_list.exposure_of_rows``)."""
    sent = [column for column in EXPOSURE_COLUMNS if column in part.columns]
    table = part.drop(columns=sent) if sent else part
    found = inputs[:cells]
    if firms is not None:
        answers = edge_list.answers_of_rows(
            found, firms, part.index, scales=scales, partner_types=partner_types
        )
        table = pd.concat([table, answers], axis=1)
    frame = derived_measures(table, scales, partner_types)
    if local_scale is not None:
        blocks = inputs[cells:]
        status = pd.concat(blocks) if blocks else pd.Series([], dtype="Int8")
        shares = edge_list.exposure_of_rows(found, status, part.index, local_scale=local_scale)
        for column, values in zip(EXPOSURE_COLUMNS, shares, strict=True):
            frame[column] = pd.Series(values, index=part.index, copy=False)
    for column in sent:
        frame[column] = part[column]
    return frame


def _breadth(firms: pd.DataFrame, scale: str, partner_types: tuple[str, ...]) -> pd.Series | None:
    """Breadth at ``scale`` (group left out): the given column, else counted from the
    collaboration answers (None where there are none)."""
    given = breadth_column(scale)
    if given in firms.columns:
        return firms[given]
    return measures.breadth_from_collaboration(firms, scale, partner_types, with_group=False)


def _international_partners(firms: pd.DataFrame, partner_types: tuple[str, ...]) -> pd.Series:
    """``any_international`` of :func:`derived_measures`, made alone: the status of each firm
    as a partner, which pipeline exposure reads."""
    return measures.any_partner(_breadth(firms, "international", partner_types))


def firm_countries(
    firms: pd.DataFrame, home_country: str | None, source: str, first_row: int = 1
) -> pd.Series:
    """Each firm's own country, which links are classified against: the ``country`` column,
    ``home_country`` where it is missing (or for every firm without the column); a firm
    without one is refused (its row numbered from ``first_row``)."""
    # categorical: one str per country, a code per firm (the directory is shipped to every Dask
    # worker, and under --engine dask the client only ships it)
    if COUNTRY in firms.columns:
        countries = firms[COUNTRY].astype("category")
        if home_country is not None:
            if str(home_country) not in countries.cat.categories:
                countries = countries.cat.add_categories([str(home_country)])
            countries = countries.fillna(str(home_country))
    elif home_country is not None:
        codes = np.zeros(len(firms), dtype="int8")
        home = pd.Categorical.from_codes(codes, [str(home_country)])
        countries = pd.Series(home, index=firms.index)
    else:
        raise InputError(
            "links need each firm's own country to tell national from international partners",
            file=source,
            column=COUNTRY,
            expected="a country column in the firms file, or home_country in the mapping",
        )
    column_types.check_present(
        countries.isna().to_numpy(),
        "missing country",
        file=source,
        column=COUNTRY,
        first_row=first_row,
        expected="each firm's country (or home_country in the mapping)",
    )
    return countries


def _add_links(
    firms: pd.DataFrame,
    batches: Iterable[tuple[pd.DataFrame, int]],
    *,
    keep: bool,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
    home_country: str | None,
    source: str,
    links_source: str,
    notes: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, "edge_list.ExposureCounts | None", Any]:
    """Classify links batch by batch; add the collaboration matrix they imply to the firms.

    Returns the firms with that matrix, the canonical links with their scale (when ``keep``),
    the local partners counted for pipeline exposure (None when the survey has no local and
    international scales to relate) and None; links on a Dask cluster (``DaskLinks``) leave
    the matrix on the workers: the firms without it and, last, the cells kept there.
    """
    countries = firm_countries(firms, home_country, source)
    directory = edge_list.FirmDirectory(firms[FIRM_ID], firms["region"], countries)
    local = _exposure_scale(scales)
    exposure = None
    if local is not None and not hasattr(batches, "count_links"):
        exposure = edge_list.ExposureCounts(directory, local_scale=local)
    kept = []
    # names the links spell unlike the firms file, matched over every batch or partition
    matched: edge_list.Matched | None = None if notes is None else {}
    if hasattr(batches, "count_links"):  # links on a Dask cluster (survey/dask_measures.DaskLinks)
        cells = batches.count_links(
            directory,
            local,
            scales=scales,
            partner_types=partner_types,
            source=links_source,
            matched=matched,
        )
        del directory
        if notes is not None and matched:
            notes.extend(edge_list.matched_notes(matched, links_source))
        return firms, None, None, cells
    collaboration = edge_list.CollaborationCounts(
        len(firms), scales=scales, partner_types=partner_types
    )
    for frame, first_row in batches:
        canonical_links = edge_list.validate_links(
            frame, directory, partner_types, source=links_source, first_row=first_row
        )
        classified = edge_list.classify_links(
            canonical_links, directory, scales=scales, source=links_source, matched=matched
        )
        canonical_links[LINK_SCALE] = pd.Categorical(
            classified[LINK_SCALE], categories=list(scales)
        )
        collaboration.add(canonical_links, classified)
        if exposure is not None:
            exposure.add(canonical_links, classified["firm_position"].to_numpy())
        if keep:
            kept.append(canonical_links)
    if exposure is not None:
        exposure.close()
    # the links are counted: the directory (a Python str per firm id and their index, about 85
    # bytes a firm) goes before the answers' columns are made, the survey stage's peak under
    # --engine dask at a million firms
    directory = None
    if notes is not None and matched:
        notes.extend(edge_list.matched_notes(matched, links_source))
    matrix = collaboration.matrix()
    matrix.index = firms.index
    all_links = None
    if keep:
        all_links = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
    return pd.concat([firms, matrix], axis=1), all_links, exposure, None
