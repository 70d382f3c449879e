"""Mapping files (TOML): a user's own column names and answer codes onto the survey model.

A mapping says which of the user's columns holds each canonical column, how answer codes
translate ("1 = yes, 2 = no, 9 = don't know"), how region and industry codes are labelled and
which category is the reference, and which scales and partner types the survey asked about.
See ``survey/mappings/*.toml`` for two complete examples and the README for the format.
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.survey.column_types import (
    id_key,
    is_missing,
    row_error,
    sorted_categories,
)
from buzzpipe.survey.measures import nullable_any
from buzzpipe.survey.schema import (
    CATEGORICAL_CONTROLS,
    COUNTRY,
    DONT_KNOW,
    FIRM_ID,
    LINK_COLUMNS,
    NUMERIC_CONTROLS,
    OUTCOMES,
    PARTNER_TYPES,
    SCALES,
    WEIGHT,
    breadth_scale,
    collab_column,
    parse_collab_column,
)

_FIRM_TARGETS = {FIRM_ID, COUNTRY, WEIGHT, *CATEGORICAL_CONTROLS, *NUMERIC_CONTROLS, *OUTCOMES}
_TOP_KEYS = {"survey", "codes", "columns", "collaboration", "links"}
_SURVEY_KEYS = ("scales", "partner_types", "home_country", "delimiter", "decimal")
_DELIMITERS = (",", ";", "\t", "|", "comma", "semicolon", "tab", "bar")

MAPPINGS_FOLDER = Path(__file__).with_name("mappings")
# example mappings by short name: ``mapping="norway"`` or ``--mapping norway``
SHIPPED_MAPPINGS = {
    "norway": MAPPINGS_FOLDER / "norway.toml",
    "cis": MAPPINGS_FOLDER / "cis.toml",
}


def mapping_path(name_or_path: str | Path) -> Path:
    """A shipped mapping's path by short name ("norway", "cis"); any other value is a path (a
    file of that name in the working folder wins over the shipped one)."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED_MAPPINGS:
        if not Path(name_or_path).exists():
            return SHIPPED_MAPPINGS[name_or_path]
    return Path(name_or_path)


@dataclass(frozen=True)
class ColumnRule:
    """One canonical column from one or more of the user's columns."""

    target: str
    sources: tuple[str, ...]
    codes: dict[str, object] | None = None
    codes_name: str | None = None
    labels: dict[str, object] | None = None
    reference: object = None
    collaboration: bool = False  # from [collaboration]: not applied to an edge-list firms file
    scale: float | None = None  # numbers multiplied by this (percent = true: 0.01)


@dataclass(frozen=True)
class RawTable:
    """A file as read: the data frame, value labels per column (.dta/.sav) and the file name."""

    frame: pd.DataFrame
    source: str
    value_labels: dict[str, dict[object, str]] = field(default_factory=dict)
    first_row: int = 1  # number of the frame's first data row (a streamed batch's offset)


def checked_columns(frame: pd.DataFrame, source: str, kind: str) -> pd.DataFrame:
    """A file's columns as read (``kind``: CSV, Excel, Parquet, ...), for every reader of one
    (``readers``, ``dask_firms``): column names trimmed of whitespace; no columns, or one that
    looks like a whole row of another delimiter, is refused with what to do."""
    if frame.shape[1] == 0:
        raise InputError("no columns", file=source, expected="a header and rows of data")
    if kind in ("CSV", "Excel"):
        frame = frame.set_axis([str(c).strip() for c in frame.columns], axis=1)
    if frame.shape[1] == 1:
        name = str(frame.columns[0])
        for sign, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"), (",", "commas")):
            if sign in name:
                raise InputError(
                    f"the file reads as one column whose name holds {word}: it looks "
                    f"delimited by {sign!r}",
                    file=source,
                    value=name[:60],
                    expected=f"--delimiter {sign!r} or [survey] delimiter = {sign!r} in the "
                    "mapping",
                )
    return frame


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file; ``apply_firms`` and ``apply_links`` turn raw tables canonical."""

    path: str
    firm_rules: tuple[ColumnRule, ...] = ()
    link_rules: tuple[ColumnRule, ...] = ()
    scales: tuple[str, ...] | None = None
    partner_types: tuple[str, ...] | None = None
    home_country: str | None = None
    delimiter: str | None = None  # [survey] delimiter and decimal of a CSV file
    decimal: str | None = None

    def apply_firms(
        self, raw: RawTable, *, edge_list: bool = False
    ) -> tuple[pd.DataFrame, dict[str, object]]:
        """The firms frame in canonical names and codes, and the reference categories chosen.

        For the firms file of an edge-list survey the [collaboration] entries are left out:
        collaboration then comes from the links.
        """
        rules = [r for r in self.firm_rules if not (edge_list and r.collaboration)]
        return _apply(raw, rules, self.path, canonical=_is_canonical_firm_column)

    def apply_links(self, raw: RawTable) -> pd.DataFrame:
        """The links frame in canonical names and codes.

        Where the firms' region codes have labels and partner_region has none of its own, a
        partner_region that is one of those codes gets its label too, so that partners compare
        with firms in the same terms; other values (regions abroad) stay as they are.
        """
        frame, _ = _apply(raw, self.link_rules, self.path, canonical=lambda n: n in LINK_COLUMNS)
        region_rule = next((r for r in self.firm_rules if r.target == "region"), None)
        own_rule = next((r for r in self.link_rules if r.target == "partner_region"), None)
        if (
            region_rule is not None
            and region_rule.labels
            and "partner_region" in frame.columns
            and (own_rule is None or (own_rule.labels is None and own_rule.codes is None))
        ):
            labels = {
                id_key(code) or str(code): label for code, label in region_rule.labels.items()
            }
            plain, keys = _code_keys(frame["partner_region"])
            translation = {v: labels.get(k, v) if k is not None else None for v, k in keys.items()}
            frame["partner_region"] = plain.map(translation)
        return frame


def _is_canonical_firm_column(name: str) -> bool:
    return (
        name in _FIRM_TARGETS
        or parse_collab_column(name) is not None
        or breadth_scale(name) is not None
    )


def apply_value_labels(raw: RawTable) -> tuple[pd.DataFrame, dict[str, object]]:
    """Without a mapping: region and industry codes with value labels become labelled categories."""
    return _apply(raw, (), raw.source, canonical=lambda name: True)


# --- parsing ----------------------------------------------------------------------------------


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a TOML mapping file, or a shipped one by short name ("norway", "cis");
    problems name the mapping file and the entry."""
    path = mapping_path(path)
    where = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such mapping file", file=where) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read mapping file: {error}", file=where) from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML: {error}", file=where) from None
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise InputError(
            "unknown section",
            file=where,
            value=unknown[0],
            expected="sections " + ", ".join(sorted(_TOP_KEYS)),
        )
    survey = _table(document.get("survey", {}), "[survey]", where)
    scales = _names(survey.get("scales"), "[survey] scales", where, allowed=SCALES)
    partner_types = _names(survey.get("partner_types"), "[survey] partner_types", where)
    home_country = survey.get("home_country")
    _check_known(survey, _SURVEY_KEYS, "unknown key in [survey]", where)
    delimiter = _choice(survey, "delimiter", _DELIMITERS, where)
    decimal = _choice(survey, "decimal", (".", ","), where)
    if home_country is not None and not isinstance(home_country, str | int):
        raise InputError(
            "home_country is not text", file=where, value=home_country, expected="a country code"
        )
    codes = {
        name: _code_table(table, f"[codes.{name}]", where)
        for name, table in _table(document.get("codes", {}), "[codes]", where).items()
    }
    firm_rules = [
        _rule(target, spec, codes, where, section="columns")
        for target, spec in _table(document.get("columns", {}), "[columns]", where).items()
    ]
    for rule in firm_rules:
        if not _is_canonical_firm_column(rule.target):
            raise InputError(
                "not a column of the survey model",
                file=where,
                column=rule.target,
                expected="firm_id, region, industry, employees, foreign_share, country, "
                "firm_age, education, openness, weight, product, process, new_to_market, "
                "collab_<scale>_<partner_type> or breadth_<scale>",
            )
    if "collaboration" in document:
        firm_rules += _collaboration_rules(
            _table(document["collaboration"], "[collaboration]", where),
            codes,
            where,
            scales or SCALES,
            partner_types or PARTNER_TYPES,
        )
    links = _table(document.get("links", {}), "[links]", where)
    link_rules = [
        _rule(target, spec, codes, where, section="links.columns")
        for target, spec in _table(links.get("columns", {}), "[links.columns]", where).items()
    ]
    for rule in link_rules:
        if rule.target not in LINK_COLUMNS:
            raise InputError(
                "not a link column",
                file=where,
                column=rule.target,
                expected=", ".join(LINK_COLUMNS),
            )
    targets = [r.target for r in firm_rules]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise InputError("column mapped twice", file=where, column=twice[0])
    return Mapping(
        path=where,
        firm_rules=tuple(firm_rules),
        link_rules=tuple(link_rules),
        scales=scales,
        partner_types=partner_types,
        home_country=None if home_country is None else str(home_country),
        delimiter=delimiter,
        decimal=decimal,
    )


def _choice(table: dict, key: str, allowed: tuple[str, ...], where: str) -> str | None:
    value = table.get(key)
    if value is not None and value not in allowed:
        raise InputError(
            f"unknown [survey] {key}",
            file=where,
            value=value,
            expected=" or ".join(repr(a) for a in allowed),
        )
    return value


def _table(value: object, name: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{name} is not a table", file=where, value=value, expected="a TOML table")
    return value


def _names(
    value: object, name: str, where: str, allowed: tuple[str, ...] | None = None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(
            f"{name} is not a list of names", file=where, value=value, expected="a list of text"
        )
    for item in value:
        if allowed is not None and item not in allowed:
            raise InputError(
                f"unknown name in {name}", file=where, value=item, expected=", ".join(allowed)
            )
        if "_" in item and allowed is not None:
            raise InputError(f"{name} names may not contain '_'", file=where, value=item)
    return tuple(value)


def _code_table(table: object, name: str, where: str) -> dict[str, object]:
    table = _table(table, name, where)
    result = {}
    for code, value in table.items():
        if not isinstance(value, int | float | str) or isinstance(value, bool):
            raise InputError(
                f"code {code!r} in {name} has no usable value",
                file=where,
                value=value,
                expected=f'a number, a label or "{DONT_KNOW}"',
            )
        result[id_key(code) or code] = value
    return result


def _sources(spec: object, name: str, where: str) -> tuple[str, ...]:
    if isinstance(spec, str) and spec:
        return (spec,)
    if isinstance(spec, list) and spec and all(isinstance(s, str) and s for s in spec):
        return tuple(spec)
    raise InputError(
        f"{name} names no column", file=where, value=spec, expected="a column name or a list"
    )


def _rule(target: str, spec: object, codes: dict, where: str, *, section: str) -> ColumnRule:
    name = f"[{section}] {target}"
    if isinstance(spec, str | list):
        return ColumnRule(target=target, sources=_sources(spec, name, where))
    spec = _table(spec, name, where)
    allowed = {"column", "columns", "codes", "labels", "reference", "scale", "percent"}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise InputError(
            f"unknown key in {name}",
            file=where,
            value=extra[0],
            expected=", ".join(sorted(allowed)),
        )
    if ("column" in spec) == ("columns" in spec):
        raise InputError(
            f"{name} needs exactly one of 'column' or 'columns'", file=where, column=target
        )
    sources = _sources(spec.get("column", spec.get("columns")), name, where)
    code_table, codes_name = None, None
    if "codes" in spec:
        if isinstance(spec["codes"], str):
            codes_name = spec["codes"]
            if codes_name not in codes:
                raise InputError(
                    f"{name} names a code table that is not there",
                    file=where,
                    value=codes_name,
                    expected="a table under [codes]: " + (", ".join(codes) or "none defined"),
                )
            code_table = codes[codes_name]
        else:
            code_table = _code_table(spec["codes"], f"{name} codes", where)
            codes_name = f"{target} codes"
    labels = _code_table(spec["labels"], f"{name} labels", where) if "labels" in spec else None
    reference = spec.get("reference")
    if reference is not None and labels is not None and reference not in labels.values():
        raise InputError(
            f"{name} reference is not one of its labels",
            file=where,
            value=reference,
            expected=", ".join(str(v) for v in labels.values()),
        )
    if len(sources) > 1 and target not in OUTCOMES and parse_collab_column(target) is None:
        raise InputError(
            f"{name} can only come from one column",
            file=where,
            column=target,
            expected="several columns (combined: 1 if any is 1) only for 0/1 answers",
        )
    return ColumnRule(
        target=target,
        sources=sources,
        codes=code_table,
        codes_name=codes_name,
        labels=labels,
        reference=reference,
        scale=_scale(spec, name, where, target),
    )


def _scale(spec: dict, name: str, where: str, target: str) -> float | None:
    """``scale = 0.01`` multiplies a numeric column; ``percent = true`` is ``scale = 0.01``."""
    scale, percent = spec.get("scale"), spec.get("percent")
    if scale is not None and percent is not None:
        raise InputError(f"{name} has both scale and percent", file=where, expected="one of them")
    if percent is not None:
        if not isinstance(percent, bool):
            raise InputError(f"{name} percent is not true or false", file=where, value=percent)
        scale = 0.01 if percent else None
    elif scale is not None and (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not np.isfinite(scale)
        or scale == 0
    ):
        raise InputError(
            f"{name} scale is not a number", file=where, value=scale, expected="e.g. 0.01"
        )
    if scale is not None and (target in CATEGORICAL_CONTROLS or target == FIRM_ID):
        raise InputError(f"{name} is not a number to scale", file=where, column=target)
    return None if scale is None else float(scale)


def _check_known(names: dict, allowed: tuple[str, ...], problem: str, where: str) -> None:
    """Every key of a mapping table must be one of ``allowed``."""
    for name in names:
        if name not in allowed:
            raise InputError(problem, file=where, value=name, expected=", ".join(allowed))


def _collaboration_rules(
    spec: dict,
    codes: dict,
    where: str,
    scales: tuple[str, ...],
    partner_types: tuple[str, ...],
) -> list[ColumnRule]:
    """Collaboration columns from a name pattern such as ``"co{partner_type}{scale}"``."""
    pattern = spec.get("column")
    if not isinstance(pattern, str) or "{scale}" not in pattern or "{partner_type}" not in pattern:
        raise InputError(
            "[collaboration] column is not a pattern",
            file=where,
            value=pattern,
            expected='a name with {scale} and {partner_type}, e.g. "co{partner_type}{scale}"',
        )
    scale_names = _table(spec.get("scales", {}), "[collaboration.scales]", where)
    type_names = _table(spec.get("partner_types", {}), "[collaboration.partner_types]", where)
    _check_known(scale_names, scales, "unknown scale in [collaboration.scales]", where)
    _check_known(
        type_names, partner_types, "unknown partner type in [collaboration.partner_types]", where
    )
    rule_spec = {k: spec[k] for k in ("codes",) if k in spec}
    rules = []
    for scale, scale_codes in scale_names.items():
        scale_codes = _sources(scale_codes, f"[collaboration.scales] {scale}", where)
        for partner_type, type_code in type_names.items():
            if not isinstance(type_code, str):
                raise InputError(
                    f"[collaboration.partner_types] {partner_type} is not text",
                    file=where,
                    value=type_code,
                )
            columns = [
                pattern.replace("{scale}", code).replace("{partner_type}", type_code)
                for code in scale_codes
            ]
            rule = _rule(
                collab_column(scale, partner_type),
                {"columns": columns, **rule_spec},
                codes,
                where,
                section="collaboration",
            )
            rules.append(ColumnRule(**{**rule.__dict__, "collaboration": True}))
    return rules


# --- applying ---------------------------------------------------------------------------------


def _apply(
    raw: RawTable, rules: tuple[ColumnRule, ...] | list[ColumnRule], mapping_path: str, *, canonical
) -> tuple[pd.DataFrame, dict[str, object]]:
    frame = raw.frame
    names = [str(c) for c in frame.columns]
    frame = frame.set_axis(names, axis=1)
    for rule in rules:
        for source in rule.sources:
            if source not in frame.columns:
                raise InputError(
                    f"the mapping names a column that is not in {raw.source}",
                    file=mapping_path,
                    column=source,
                    expected=f"a column of {raw.source} (for {rule.target})",
                )
    targets = {r.target for r in rules}
    used = {s for r in rules for s in r.sources}
    columns: dict[str, pd.Series] = {}
    references: dict[str, object] = {}
    for name in names:
        if name not in targets and name not in used and canonical(name):
            columns[name] = frame[name]
            if name in CATEGORICAL_CONTROLS and name in raw.value_labels:
                columns[name] = _labelled(frame[name], raw.value_labels[name], raw, name)
    for rule in rules:
        parts = []
        for source in rule.sources:
            values = frame[source]
            if rule.codes is not None:
                values = _recode(values, rule, source, raw, mapping_path)
            parts.append(values)
        if len(parts) > 1:
            numeric = [pd.to_numeric(p, errors="coerce") for p in parts]
            for part, number, source in zip(parts, numeric, rule.sources, strict=True):
                bad = (part.notna() & ~number.isin([0, 1])).to_numpy()
                if bad.any():
                    raise _file_error(
                        "cannot combine a column that is not 0/1",
                        part,
                        bad,
                        raw,
                        source,
                        expected=f"0 or 1 after the codes of {mapping_path} (for {rule.target})",
                    )
            combined = nullable_any(numeric, frame.index)
        else:
            combined = parts[0]
        if rule.scale is not None:
            combined = _scaled(combined, rule, raw, mapping_path)
        labels = rule.labels
        if labels is None and rule.target in CATEGORICAL_CONTROLS:
            file_labels = raw.value_labels.get(rule.sources[0])
            if file_labels:
                labels = {id_key(code) or str(code): label for code, label in file_labels.items()}
        if labels is not None:
            combined = _labelled(combined, labels, raw, rule.sources[0], mapping_path)
        columns[rule.target] = combined
        if rule.reference is not None:
            references[rule.target] = rule.reference
    # the columns themselves (copy on write keeps the file's table as it is), not a copy of the
    # whole table beside the one read: about 30 bytes a firm of a register's firms file
    return pd.DataFrame(columns, index=frame.index, copy=False), references


def _scaled(values: pd.Series, rule: ColumnRule, raw: RawTable, mapping_path: str) -> pd.Series:
    """The column times the rule's scale; text that is not a number is named, not guessed."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (values.notna() & numbers.isna()).to_numpy()
    if bad.any():
        raise _file_error(
            "not a number to scale",
            values,
            bad,
            raw,
            rule.sources[0],
            expected=f"numbers (scaled by {rule.scale:g} in {mapping_path})",
        )
    return numbers * rule.scale


def _file_error(
    problem: str, values: pd.Series, mask: np.ndarray, raw: RawTable, column: str, *, expected: str
) -> InputError:
    """A row error in the user's data file (not the mapping), rows numbered as in that file."""
    return row_error(
        problem,
        values,
        mask,
        file=raw.source,
        column=column,
        first_row=raw.first_row,
        expected=expected,
    )


def _code_keys(values: pd.Series) -> tuple[pd.Series, dict[object, str | None]]:
    """Each distinct value's comparable key (1, 1.0 and "1" are code "1"), looked up once."""
    plain = values.astype("object")
    distinct = pd.unique(plain.to_numpy())
    return plain, {v: (None if is_missing(v) else (id_key(v) or "")) for v in distinct}


def _recode(
    values: pd.Series, rule: ColumnRule, column: str, raw: RawTable, mapping_path: str
) -> pd.Series:
    plain, keys = _code_keys(values)
    unknown = {v for v, k in keys.items() if k is not None and k not in rule.codes}
    if unknown:
        unmapped = plain.isin(unknown).to_numpy()
        shown = ", ".join(list(rule.codes)[:10])
        raise _file_error(
            f"a code the mapping does not list (codes {rule.codes_name!r} in {mapping_path})",
            values,
            unmapped,
            raw,
            column,
            expected=f"one of the codes {shown}",
        )
    translation = {
        v: (None if k is None or rule.codes[k] == DONT_KNOW else rule.codes[k])
        for v, k in keys.items()
    }
    recoded = plain.map(translation)
    targets = [t for t in translation.values() if t is not None]
    if all(isinstance(t, int | float) for t in targets):
        return pd.Series(recoded.to_numpy(dtype="float64", na_value=np.nan), index=values.index)
    return recoded.astype("object").where(recoded.notna(), None)


def _labelled(
    values: pd.Series,
    labels: dict,
    raw: RawTable,
    column: str,
    mapping_path: str | None = None,
) -> pd.Series:
    """Codes to a Categorical of their labels, categories in code order (lowest code first)."""
    labels = {id_key(code) or str(code): label for code, label in labels.items()}
    plain, keys = _code_keys(values)
    unknown = {v for v, k in keys.items() if k is not None and k not in labels}
    if unknown:
        unlabelled = plain.isin(unknown).to_numpy()
        where = f" in {mapping_path}" if mapping_path else ""
        raise _file_error(
            f"a code without a label{where}",
            values,
            unlabelled,
            raw,
            column,
            expected="one of the labelled codes " + ", ".join(list(labels)[:10]),
        )
    ordered_codes = sorted_categories([float(c) if _is_number(c) else c for c in labels])
    categories = list(dict.fromkeys(labels[id_key(c) or str(c)] for c in ordered_codes))
    translation = {v: (None if k is None else labels[k]) for v, k in keys.items()}
    mapped = plain.map(translation)
    return pd.Series(
        pd.Categorical(mapped.where(mapped.notna(), None), categories=categories),
        index=values.index,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
