"""``results.json``: the study's results in the study's format, read, checked and written.

The study owns the numbers and their format (``buzzpipe.study.results``, ``format_version``
1); the report reads that format and nothing else. This module checks a file against it before
anything is rendered, so that a damaged or hand-edited file fails with one line naming the JSON
path, the value and what was expected. Floats follow the study's encoding: a number,
``"inf"``/``"-inf"`` for unbounded ends, ``null`` for not-a-number. The report's own additions
live under ``meta`` (``source``, ``title``, ``descriptives``) and are documented in
``docs/results_schema.md``.
"""

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buzzpipe.atomic_write import write_text
from buzzpipe.errors import InputError

FORMAT_VERSION = 1
VERDICTS: tuple[str, ...] = ("found", "not_found", "opposite", "not_assessed")
MEASURES: tuple[str, ...] = ("count", "share", "mean")


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a ``results.json`` file written by a study.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``buzzpipe study --out``, ``buzzpipe replicate``, :func:`write_report`).

    Returns
    -------
    dict
        The results, checked against ``docs/results_schema.md``; :func:`buzzpipe.write_report`
        renders them again.

    Notes
    -----
    A file that cannot be read, is not JSON or does not follow the schema raises one
    :class:`~buzzpipe.errors.InputError` line naming the file and the place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import buzzpipe as bp
    >>> survey = bp.synthesize("norway2010", seed=1, firms=400)
    >>> results = bp.run_study(survey, seed=1, outcomes=["product"], sensitivity=False,
    ...                        heterogeneity=False, bootstrap_replications=0, scenarios=())
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "results.json").write_text(results.to_json(), encoding="utf-8")
    >>> again = bp.read_results(folder / "results.json")
    >>> again["meta"]["primary_outcome"], again["meta"]["firms"]
    ('product', 400)
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read results: {error.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", file=str(path), expected="JSON") from None
    try:
        results = json.loads(text)
        validate_results(results, file=str(path))
    except json.JSONDecodeError as error:
        raise InputError(
            f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            file=str(path),
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to be a results file", file=str(path)) from None
    return results


def dumps_results(results: Mapping[str, Any]) -> str:
    """The results as strict JSON text (no NaN or infinity literals), checked first."""
    validate_results(results)
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_results(results: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Check and write ``results.json`` atomically."""
    write_text(path, dumps_results(results))


def describe_record(table: Any) -> dict[str, Any]:
    """The data layer's descriptive table (a DataFrame indexed by section, statistic, measure,
    one column per group) as the JSON record the report keeps in ``meta.descriptives``."""
    rows = []
    for (section, statistic, measure), values in table.iterrows():
        rows.append(
            {
                "section": str(section),
                "statistic": str(statistic),
                "measure": str(measure),
                "values": [None if math.isnan(float(v)) else float(v) for v in values],
            }
        )
    return {
        "columns": [str(column) for column in table.columns],
        "rows": rows,
        "note": str(table.attrs.get("note", "")),
    }


def validate_results(results: Any, *, file: str | None = None) -> None:
    """Check the structure against the study's format; raise ``InputError`` at the first problem.

    The error names the JSON path of the offending entry (in the ``column`` slot), the value and
    the expectation.
    """
    _Checker(file).results(results)


class _Checker:
    """Walks a results structure in the study's format."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, where: str, problem: str, value: object = None, expected: str | None = None):
        if isinstance(value, Mapping | list):
            value = f"{type(value).__name__} of {len(value)}"
        raise InputError(problem, file=self.file, column=where, value=value, expected=expected)

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, "wrong type", value, "an object")
        return value

    def sequence(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            self.fail(where, "wrong type", value, "a list")
        return value

    def text(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            self.fail(where, "wrong type", value, "a string")

    def require(self, record: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in record:
            self.fail(f"{where}.{key}", "missing entry", None, "present")
        return record[key]

    def number(self, value: Any, where: str, *, nullable: bool = True) -> None:
        """A float in the study's encoding: a finite number, "inf", "-inf" or null."""
        if value is None and nullable:
            return
        if value in ("inf", "-inf"):
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "wrong type", value, 'a number, "inf", "-inf" or null')
        if not math.isfinite(value):
            self.fail(where, "not finite", value, 'a finite number ("inf" for unbounded)')

    def probability(self, value: Any, where: str) -> None:
        self.number(value, where)
        if isinstance(value, int | float) and not 0.0 <= value <= 1.0:
            self.fail(where, "out of range", value, "a number in [0, 1]")

    def count(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(where, "wrong type", value, "a non-negative integer")

    def interval(self, value: Any, where: str) -> None:
        if value is None:
            return
        value = self.mapping(value, where)
        segments = self.sequence(self.require(value, "segments", where), f"{where}.segments")
        for index, segment in enumerate(segments):
            here = f"{where}.segments[{index}]"
            if not isinstance(segment, list) or len(segment) != 2:
                self.fail(here, "a segment needs two ends", segment, "[low, high]")
            for end, bound in enumerate(segment):
                self.number(bound, f"{here}[{end}]")
            low, high = (decode_float(bound) for bound in segment)
            if low is not None and high is not None and low > high:
                self.fail(here, "segment ends in the wrong order", f"[{low}, {high}]")

    def estimate(self, record: Any, where: str) -> None:
        record = self.mapping(record, where)
        self.number(self.require(record, "estimate", where), f"{where}.estimate")
        self.number(self.require(record, "std_error", where), f"{where}.std_error")
        if isinstance(record["std_error"], int | float) and record["std_error"] < 0:
            self.fail(f"{where}.std_error", "negative standard error", record["std_error"])
        self.probability(self.require(record, "p_value", where), f"{where}.p_value")
        self.text(self.require(record, "inference", where), f"{where}.inference")
        self.interval(record.get("interval"), f"{where}.interval")
        self.number(record.get("statistic"), f"{where}.statistic")
        alternative = record.get("alternative", "two-sided")
        if alternative not in ("two-sided", "greater", "less"):
            self.fail(
                f"{where}.alternative", "unknown value", alternative, "two-sided, greater, less"
            )

    def estimates(self, value: Any, where: str) -> None:
        for name, record in self.mapping(value, where).items():
            self.estimate(record, f"{where}.{name}")

    def results(self, results: Any) -> None:
        results = self.mapping(results, "$")
        version = self.require(results, "format_version", "$")
        if version != FORMAT_VERSION:
            self.fail("$.format_version", "unsupported results format", version, "1")
        meta = self.mapping(self.require(results, "meta", "$"), "$.meta")
        if "descriptives" in meta:
            self.descriptives(meta["descriptives"], "$.meta.descriptives")
        models = self.mapping(self.require(results, "models", "$"), "$.models")
        if not models:
            self.fail("$.models", "no models", None, "at least one outcome with models")
        for outcome, by_name in models.items():
            for name, model in self.mapping(by_name, f"$.models.{outcome}").items():
                self.model(model, f"$.models.{outcome}.{name}")
        for key in ("tests", "descriptions"):
            for section, records in self.mapping(results.get(key, {}), f"$.{key}").items():
                self.estimates(records, f"$.{key}.{section}")
        programmes = self.sequence(results.get("counterfactuals", []), "$.counterfactuals")
        for index, programme in enumerate(programmes):
            self.counterfactual(programme, f"$.counterfactuals[{index}]")
        verdicts = self.sequence(self.require(results, "verdicts", "$"), "$.verdicts")
        for index, verdict in enumerate(verdicts):
            self.verdict(verdict, f"$.verdicts[{index}]")

    def model(self, model: Any, where: str) -> None:
        model = self.mapping(model, where)
        for key in ("family", "inference"):
            self.text(self.require(model, key, where), f"{where}.{key}")
        self.count(self.require(model, "nobs", where), f"{where}.nobs")
        self.number(model.get("log_likelihood"), f"{where}.log_likelihood")
        self.number(model.get("pseudo_r2"), f"{where}.pseudo_r2")
        terms = self.mapping(self.require(model, "terms", where), f"{where}.terms")
        if not terms:
            self.fail(f"{where}.terms", "no terms", None, "at least one term")
        self.estimates(terms, f"{where}.terms")
        for key in ("odds_ratios", "marginal_effects"):
            self.estimates(model.get(key, {}), f"{where}.{key}")
        for name, column in self.mapping(model.get("sensitivity", {}), where).items():
            self.estimates(column, f"{where}.sensitivity.{name}")

    def counterfactual(self, programme: Any, where: str) -> None:
        programme = self.mapping(programme, where)
        for key in ("outcome", "programme", "allocation", "targeting"):
            self.text(self.require(programme, key, where), f"{where}.{key}")
        self.count(self.require(programme, "firms_treated", where), f"{where}.firms_treated")
        cells = self.sequence(self.require(programme, "cells", where), f"{where}.cells")
        for index, cell in enumerate(cells):
            here = f"{where}.cells[{index}]"
            cell = self.mapping(cell, here)
            self.text(self.require(cell, "region", here), f"{here}.region")
            self.number(self.require(cell, "firms", here), f"{here}.firms")
            for key in ("baseline_rate", "predicted_rate"):
                self.probability(self.require(cell, key, here), f"{here}.{key}")
            self.number(self.require(cell, "extra_innovators", here), f"{here}.extra_innovators")
            for key in ("predicted_rate_interval", "extra_innovators_interval"):
                self.interval(cell.get(key), f"{here}.{key}")

    def verdict(self, verdict: Any, where: str) -> None:
        verdict = self.mapping(verdict, where)
        for key in ("finding", "outcome", "rule", "quantity"):
            self.text(self.require(verdict, key, where), f"{where}.{key}")
        state = self.require(verdict, "verdict", where)
        if state not in VERDICTS:
            self.fail(f"{where}.verdict", "unknown verdict", state, "one of " + ", ".join(VERDICTS))
        self.number(self.require(verdict, "threshold", where), f"{where}.threshold", nullable=False)
        self.number(verdict.get("estimate"), f"{where}.estimate")
        self.probability(verdict.get("p_value"), f"{where}.p_value")

    def descriptives(self, table: Any, where: str) -> None:
        table = self.mapping(table, where)
        columns = self.sequence(self.require(table, "columns", where), f"{where}.columns")
        for index, row in enumerate(self.sequence(self.require(table, "rows", where), where)):
            here = f"{where}.rows[{index}]"
            row = self.mapping(row, here)
            for key in ("section", "statistic"):
                self.text(self.require(row, key, here), f"{here}.{key}")
            if self.require(row, "measure", here) not in MEASURES:
                self.fail(f"{here}.measure", "unknown measure", row["measure"], ", ".join(MEASURES))
            values = self.sequence(self.require(row, "values", here), f"{here}.values")
            if len(values) != len(columns):
                self.fail(
                    f"{here}.values", "one value per column needed", values, str(len(columns))
                )
            for column, value in enumerate(values):
                self.number(value, f"{here}.values[{column}]")


def decode_float(value: Any) -> float | None:
    """A float from the study's encoding: a number, "inf"/"-inf", or null (None stays None).

    The report side's one reader of that encoding (the report may not import the study)."""
    if value is None:
        return None
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return float(value)
