"""Presets: TOML files of generating parameters, each marked with its published source or why it
is assumed.

A parameter is a TOML table with ``value`` and exactly one of ``published = "<source>"`` or
``assumed = "<why>"`` (plus ``calibrated = true`` where the calibration rewrites it). A preset may
``extends = "<other preset>"`` and then lists only what it changes. Parameters are addressed by
dotted keys (``outcomes.product.breadth_international``), which is also the syntax of
``--set key=value``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from buzzpipe.errors import InputError
from buzzpipe.survey.schema import PARTNER_TYPES, SCALES

PRESET_FOLDER = "presets"
OUTCOME_TERMS: tuple[str, ...] = (
    "intercept",
    "breadth_regional",
    "breadth_national",
    "breadth_international",
    "regional_x_international",
    "pipeline_exposure",
    "log_employees",
    "foreign_share",
    "openness",
)
# Metadata at the top of a preset file: not parameters.
METADATA_KEYS = ("name", "description", "extends", "calibration_result")
SOURCE_KEYS = ("published", "assumed")

# Kinds of value: "int", "float", "share" (in [0, 1]), "str", "regions", "industries" (lists of
# names), "per_region"/"per_industry" (numbers, one per region/industry), "per_partner_type",
# "per_scale" (tables of numbers), plus fixed-length lists.
SCHEMA: dict[str, str] = {
    "survey.firms": "positive_int",
    "survey.country": "str",
    "survey.regions": "names",
    "survey.region_shares": "shares_per_region",
    "survey.industries": "names",
    "survey.industry_shares": "shares_per_industry",
    "survey.other_regions": "names",
    "size.min_employees": "positive_int",
    "size.reference_employees": "positive_float",
    "size.log_excess_mean": "float",
    "size.log_excess_sd": "nonnegative_float",
    "size.industry_shift": "per_industry",
    "ownership.foreign_intercept": "float",
    "ownership.foreign_size_slope": "float",
    "ownership.full_share_probability": "share",
    "ownership.partial_share_range": "share_range",
    "openness.measure_noise_sd": "nonnegative_float",
    "openness.cutpoints": "increasing",
    **{f"collaboration.type_intercept.{scale}": "per_partner_type" for scale in SCALES},
    "collaboration.scale_shift": "per_scale",
    "collaboration.size_slope": "per_scale",
    "collaboration.openness_slope": "per_scale",
    "collaboration.foreign_slope": "per_scale",
    "collaboration.group_foreign_slope": "per_scale",
    "collaboration.firm_scale_sd": "nonnegative_per_scale",
    "collaboration.dont_know_rate": "share",
    "links.extra_partners_mean": "nonnegative_float",
    "links.in_survey_share": "share",
    "links.foreign_countries": "names",
    "links.foreign_country_shares": "shares_per_country",
    "links.homophily": "share",
    "confounding.cell_shock_pipeline": "float",
    "confounding.cell_shock_outcome": "float",
    **{
        f"outcomes.{outcome}.{term}": "float"
        for outcome in ("product", "process", "new_to_market")
        for term in OUTCOME_TERMS
    },
    **{
        f"outcomes.{outcome}.{effects}": kind
        for outcome in ("product", "process", "new_to_market")
        for effects, kind in (
            ("industry_effects", "per_industry"),
            ("region_effects", "per_region"),
        )
    },
    "calibration.specification": "str",
    "calibration.target_odds_ratio": "positive_float",
    "calibration.target_any_regional": "share",
    "calibration.target_any_national": "share",
    "calibration.target_any_international": "share",
    "calibration.target_product": "share",
    "calibration.target_process": "share",
    "calibration.target_new_to_market": "share",
    "calibration.seeds": "positive_int",
}


@dataclass(frozen=True)
class Parameter:
    """One generating parameter: its value and where the value comes from."""

    value: Any
    source: str  # "published" or "assumed"
    reason: str
    calibrated: bool = False


@dataclass
class Preset:
    """A complete, validated set of generating parameters."""

    name: str
    description: str
    parameters: dict[str, Parameter]
    path: Path | None = None
    calibration_result: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.parameters[key].value

    def with_values(self, values: dict[str, Any], origin: str = "--set") -> Preset:
        """A copy with some values replaced (same sources), validated again; errors name
        ``origin`` (where the new values came from)."""
        parameters = dict(self.parameters)
        for key, value in values.items():
            if key not in parameters:
                raise InputError("unknown preset key", value=key, expected=_known_keys_hint())
            parameters[key] = replace(parameters[key], value=value)
        preset = Preset(self.name, self.description, parameters, self.path, self.calibration_result)
        validate(preset, origin)
        return preset


def builtin_names() -> list[str]:
    """Names of the presets shipped with buzzpipe."""
    folder = resources.files("buzzpipe.synth").joinpath(PRESET_FOLDER)
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_path(name: str) -> Path:
    """File of a shipped preset."""
    return Path(str(resources.files("buzzpipe.synth").joinpath(PRESET_FOLDER, f"{name}.toml")))


def load_preset(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Preset:
    """Load a shipped preset by name, or a user preset file, then apply ``overrides``."""
    path = _resolve(name_or_path)
    tree = _read_toml(path)
    chain = [(path, tree)]
    seen = {path.resolve()}
    while "extends" in chain[-1][1]:
        parent = _resolve(chain[-1][1]["extends"], relative_to=chain[-1][0].parent)
        if parent.resolve() in seen:
            raise InputError("presets extend each other in a circle", file=str(parent))
        seen.add(parent.resolve())
        chain.append((parent, _read_toml(parent)))
    parameters: dict[str, Parameter] = {}
    for file, layer in reversed(chain):
        for key, parameter in _flatten(layer, file).items():
            parameters[key] = parameter
    preset = Preset(
        name=str(tree.get("name", path.stem)),
        description=str(tree.get("description", "")),
        parameters=parameters,
        path=path,
        calibration_result=dict(tree.get("calibration_result", {})),
    )
    validate(preset)
    if overrides:
        preset = preset.with_values(_expand_overrides(preset, overrides))
    return preset


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is a TOML literal or a bare word."""
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise InputError("bad --set", value=text, expected="key=value, e.g. survey.firms=5000")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _expand_overrides(preset: Preset, overrides: dict[str, Any]) -> dict[str, Any]:
    """Turn ``table.key.entry`` overrides of one entry of a table value into whole values."""
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in preset.parameters:
            values[key] = value
            continue
        parent, _, entry = key.rpartition(".")
        current = values.get(parent, preset.parameters.get(parent, Parameter(None, "", "")).value)
        if not isinstance(current, dict) or entry not in current:
            raise InputError("unknown preset key", value=key, expected=_known_keys_hint())
        values[parent] = {**current, entry: value}
    return values


def _known_keys_hint() -> str:
    return "a dotted key of the preset, such as survey.firms or outcomes.product.breadth_regional"


def _resolve(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    text = str(name_or_path)
    if text in builtin_names():
        return builtin_path(text)
    candidates = [Path(text)]
    if relative_to is not None:
        candidates.insert(0, relative_to / text)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(
        "no such preset",
        value=text,
        expected=f"one of {', '.join(builtin_names())} or a preset TOML file",
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"not valid TOML: {error}", file=str(path)) from None
    except OSError as error:
        raise InputError(f"cannot read preset: {error.strerror}", file=str(path)) from None


def _flatten(tree: dict[str, Any], file: Path, prefix: str = "") -> dict[str, Parameter]:
    found: dict[str, Parameter] = {}
    for key, item in tree.items():
        dotted = f"{prefix}{key}"
        if not prefix and key in METADATA_KEYS:
            continue
        if not isinstance(item, dict):
            raise InputError(
                "a preset parameter must be a table with value and published or assumed",
                file=str(file),
                column=dotted,
                value=item,
            )
        if "value" not in item:
            found.update(_flatten(item, file, f"{dotted}."))
            continue
        sources = [source for source in SOURCE_KEYS if source in item]
        if len(sources) != 1 or not str(item[sources[0]]).strip():
            raise InputError(
                "parameter lacks its provenance",
                file=str(file),
                column=dotted,
                expected='exactly one of published = "<source>" or assumed = "<why>"',
            )
        extra = set(item) - {"value", "calibrated", *SOURCE_KEYS}
        if extra:
            raise InputError(
                "unknown field in parameter", file=str(file), column=dotted, value=sorted(extra)
            )
        found[dotted] = Parameter(
            item["value"], sources[0], str(item[sources[0]]), bool(item.get("calibrated", False))
        )
    return found


def validate(preset: Preset, origin: str | None = None) -> None:
    """Check every required key is present with a value of the right kind and length."""
    where = origin or (str(preset.path) if preset.path else preset.name)
    missing = sorted(set(SCHEMA) - set(preset.parameters))
    if missing:
        raise InputError(
            "preset lacks parameters", file=where, value=missing[:5], expected="all keys of SCHEMA"
        )
    unknown = sorted(set(preset.parameters) - set(SCHEMA))
    if unknown:
        raise InputError("unknown preset keys", file=where, value=unknown[:5])
    sizes = {
        "region": len(preset["survey.regions"])
        if isinstance(preset["survey.regions"], list)
        else 0,
        "industry": len(preset["survey.industries"])
        if isinstance(preset["survey.industries"], list)
        else 0,
        "country": len(preset["links.foreign_countries"])
        if isinstance(preset["links.foreign_countries"], list)
        else 0,
    }
    for key, kind in SCHEMA.items():
        problem = _check(preset[key], kind, sizes)
        if problem:
            raise InputError(
                "bad preset value", file=where, column=key, value=preset[key], expected=problem
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(value: Any, kind: str, sizes: dict[str, int]) -> str | None:
    """Return what was expected if ``value`` is not of ``kind``, else None."""
    numbers = isinstance(value, list) and all(_is_number(v) for v in value)
    if kind == "positive_int":
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
            else "a positive integer"
        )
    if kind == "float":
        return None if _is_number(value) else "a number"
    if kind == "positive_float":
        return None if _is_number(value) and value > 0 else "a positive number"
    if kind == "nonnegative_float":
        return None if _is_number(value) and value >= 0 else "a number >= 0"
    if kind == "share":
        return None if _is_number(value) and 0 <= value <= 1 else "a share in [0, 1]"
    if kind == "str":
        return None if isinstance(value, str) and value else "a non-empty string"
    if kind == "names":
        ok = isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
        return None if ok and len(set(value)) == len(value) else "a list of distinct names"
    if kind.startswith("shares_per_") or kind in ("per_region", "per_industry"):
        what = kind.rpartition("_")[2]
        expected_length = sizes[what]
        if not numbers or len(value) != expected_length:
            return f"a list of {expected_length} numbers, one per {what}"
        if kind.startswith("shares_per_") and (min(value) < 0 or abs(sum(value) - 1) > 1e-6):
            return f"{expected_length} shares >= 0 summing to 1"
        return None
    if kind == "share_range":
        ok = numbers and len(value) == 2 and 0 <= value[0] <= value[1] <= 1
        return None if ok else "[low, high] with 0 <= low <= high <= 1"
    if kind == "increasing":
        ok = numbers and value and all(a < b for a, b in zip(value, value[1:], strict=False))
        return None if ok else "an increasing list of numbers"
    if kind in ("per_partner_type", "per_scale", "nonnegative_per_scale"):
        names = PARTNER_TYPES if kind == "per_partner_type" else SCALES
        ok = isinstance(value, dict) and set(value) == set(names)
        ok = ok and all(_is_number(v) for v in value.values())
        if ok and kind == "nonnegative_per_scale":
            ok = all(v >= 0 for v in value.values())
        return None if ok else f"a table of numbers for {', '.join(names)}"
    raise ValueError(f"unknown kind {kind}")


def render_value(value: Any) -> str:
    """A TOML literal for a value (numbers with full float precision)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {render_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} to TOML")


def rewrite_calibrated(
    text: str,
    values: dict[str, Any],
    appended_sources: dict[str, tuple[str, str, bool]],
    result: dict[str, Any],
) -> str:
    """Return preset text with calibrated values replaced (or appended) and the result recorded.

    Hand-written comments and order are kept: only the ``value =`` line of each calibrated
    table changes; a table the file lacks (inherited through ``extends``) is appended with the
    provenance given in ``appended_sources`` (key -> ("published" or "assumed", reason,
    whether the calibration sets it)).
    """
    record_comment = "# Written by the calibration; a record, not parameters."
    text = re.sub(r"(?ms)^\[calibration_result\]\n.*?(?=^\[|\Z)", "", text)
    text = text.replace(record_comment + "\n", "").rstrip() + "\n"
    for key, value in values.items():
        header = re.compile(rf"(?m)^\[{re.escape(key)}\]\s*$")
        match = header.search(text)
        if match:
            section_end = re.compile(r"(?m)^\[").search(text, match.end())
            end = section_end.start() if section_end else len(text)
            section = text[match.end() : end]
            line = f"value = {render_value(value)}"
            section = re.sub(r"(?m)^value\s*=.*$", lambda _, line=line: line, section, count=1)
            text = text[: match.end()] + section + text[end:]
        else:
            source, reason, calibrated = appended_sources[key]
            flag = "calibrated = true\n" if calibrated else ""
            text += (
                f"\n[{key}]\nvalue = {render_value(value)}\n{flag}"
                f"{source} = {render_value(reason)}\n"
            )
    lines = ["", record_comment, "[calibration_result]"]
    lines += [f"{key} = {render_value(value)}" for key, value in result.items()]
    return text.rstrip() + "\n" + "\n".join(lines) + "\n"
