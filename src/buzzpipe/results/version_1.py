"""Reading a ``format_version`` 1 ``results.json`` (written before the results contract).

Format 1 wrote facts as phrases (``"cluster(region)"``, ``"wild score bootstrap by region
(webb)"``) and kept no term kinds; this module turns such a file into format 2 data, once, on
reading (``version_2`` takes it on to the present format), so ``buzzpipe report`` renders old
files. It is the only code that reads those phrases: nothing in the report parses a study
string. What format 1 never recorded (the number of clusters, the bootstrap draws) stays absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from buzzpipe.errors import InputError
from buzzpipe.results.vocabulary import InferenceKind, InferenceMethod, TermKind

_METHODS = {
    "delta method": InferenceMethod.DELTA_METHOD,
    "Fieller": InferenceMethod.FIELLER,
    "suest": InferenceMethod.SUEST,
}
_CLUSTER = re.compile(r"^cluster\((?P<by>\w+)\)$")
_WILD = re.compile(r"^wild score bootstrap(?: by (?P<by>\w+))?(?: \((?P<weights>\w+)\))?$")
_BETWEEN = "between cells (meta-regression, Knapp-Hartung t)"
_FACTOR = re.compile(r"^C\((?P<variable>\w+)\)\[T\.(?P<level>.+)\]$")
_CUT = re.compile(r"^cut(?P<number>\d+)$")
_SENSITIVITY_KEYS = {
    "cluster(region)": InferenceKind.CLUSTER.value,
    "wild score bootstrap": InferenceKind.WILD_SCORE_BOOTSTRAP.value,
}


def convert_version_1(data: Mapping[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """Format 2 data from format 1 data; a phrase it cannot read raises one ``InputError``
    line saying the file must be regenerated."""
    return converted(_convert, data, version=1, file=file)


def converted(
    convert: Callable[[Mapping[str, Any]], dict[str, Any]],
    data: Mapping[str, Any],
    *,
    version: int,
    file: str | None,
) -> dict[str, Any]:
    """``convert(data)``, or one ``InputError`` line saying the file must be regenerated."""
    try:
        return convert(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(
            f"a format-{version} results file that cannot be converted ({error}): regenerate "
            "it with this version of buzzpipe",
            file=file,
        ) from None


def inference_record(phrase: str) -> dict[str, Any]:
    """A format-1 inference phrase as a format-2 record."""
    base, _, rest = phrase.partition(",")
    base, rest = base.strip(), rest.strip()
    record: dict[str, Any]
    if phrase == _BETWEEN:
        return {
            "kind": InferenceKind.BETWEEN_CELLS.value,
            "by": "region_industry_cell",
            "method": InferenceMethod.META_REGRESSION.value,
        }
    if base in (InferenceKind.ROBUST, InferenceKind.CLASSICAL):
        record = {"kind": base}
    elif match := _CLUSTER.match(base):
        record = {"kind": InferenceKind.CLUSTER.value, "by": match["by"]}
    elif match := _WILD.match(base):
        record = {"kind": InferenceKind.WILD_SCORE_BOOTSTRAP.value, "by": match["by"] or "region"}
        if match["weights"]:
            record["weights"] = match["weights"]
    else:
        raise ValueError(f"unknown inference {phrase!r}")
    if rest:
        record["method"] = _METHODS[rest].value
    return record


def term_record(name: str) -> dict[str, Any]:
    """A format-1 term name as a format-2 term record."""
    if name == "Intercept":
        return {"kind": TermKind.INTERCEPT.value}
    if match := _CUT.match(name):
        return {"kind": TermKind.CUT.value, "number": int(match["number"])}
    if ":" in name:
        return {
            "kind": TermKind.INTERACTION.value,
            "parts": [term_record(p) for p in name.split(":")],
        }
    if match := _FACTOR.match(name):
        return {
            "kind": TermKind.FACTOR_LEVEL.value,
            "variable": match["variable"],
            "level": match["level"],
        }
    return {"kind": TermKind.CONTINUOUS.value, "variable": name}


def _estimate(record: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(record)
    converted["inference"] = inference_record(record["inference"])
    if isinstance(record.get("interval"), Mapping):
        converted["interval"] = {
            key: value for key, value in record["interval"].items() if key != "kind"
        }
    for key in ("predicted_rate_interval", "extra_innovators_interval"):
        converted.pop(key, None)
    return converted


def _estimates(records: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _estimate(record) for name, record in records.items()}


def _model(record: Mapping[str, Any]) -> dict[str, Any]:
    model = dict(record)
    model["inference"] = inference_record(record["inference"])
    model["terms"] = _estimates(record["terms"])
    model["term_kinds"] = {name: term_record(name) for name in record["terms"]}
    for key in ("odds_ratios", "marginal_effects"):
        model[key] = _estimates(record.get(key, {}))
    model["sensitivity"] = {
        _SENSITIVITY_KEYS[name]: _estimates(terms)
        for name, terms in record.get("sensitivity", {}).items()
    }
    return model


def _interval(record: Any) -> Any:
    if not isinstance(record, Mapping):
        return record
    return {key: value for key, value in record.items() if key != "kind"}


def _counterfactual(record: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(record)
    converted["cells"] = [
        {key: _interval(value) for key, value in cell.items()} for cell in record["cells"]
    ]
    return converted


def _verdict(record: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(record)
    decision, _, rest = record["rule"].partition(" test of ")
    paths = rest.rpartition(" at ")[0]
    converted["decision"] = decision
    converted["quantities"] = paths.split(" or else ") if paths else [record["quantity"]]
    return converted


def _descriptives(data: Mapping[str, Any]) -> dict[str, Any] | None:
    table = data.get("meta", {}).get("descriptives")
    if table:
        return dict(table)
    study_table = data.get("descriptives") or {}
    if not study_table.get("rows"):
        return None
    return {
        "columns": list(study_table["columns"]),
        "rows": [
            {
                "section": row["index"][0],
                "statistic": row["index"][1],
                "measure": row["index"][2],
                "values": row["values"],
            }
            for row in study_table["rows"]
        ],
        "note": "",
    }


def _convert(data: Mapping[str, Any]) -> dict[str, Any]:
    meta = {key: value for key, value in data.get("meta", {}).items() if key != "descriptives"}
    return {
        "format_version": 2,
        "meta": meta,
        "models": {
            outcome: {name: _model(model) for name, model in models.items()}
            for outcome, models in data["models"].items()
        },
        "tests": {section: _estimates(tests) for section, tests in data.get("tests", {}).items()},
        "descriptions": {
            section: _estimates(items) for section, items in data.get("descriptions", {}).items()
        },
        "counterfactuals": [_counterfactual(r) for r in data.get("counterfactuals", [])],
        "verdicts": [_verdict(v) for v in data.get("verdicts", [])],
        "verdicts_by_outcome": {
            outcome: [_verdict(v) for v in verdicts]
            for outcome, verdicts in data.get("verdicts_by_outcome", {}).items()
        },
        "descriptives": _descriptives(data),
    }
