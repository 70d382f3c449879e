"""``results.json``: the one reader, checker and writer of the study's results (format 2).

Reading and checking are one walk: :func:`results_from_dict` builds the typed records of
:mod:`buzzpipe.results.records` from JSON data, led by the dataclasses' type hints, and stops at
the first entry that breaks them with one :class:`~buzzpipe.errors.InputError` line naming the
JSON path (in the ``column`` slot), the value and what was expected. Writing encodes the records
and reads the encoding back through the same walk before a byte is written, so a file that
:func:`write_results` wrote always reads. A new field is a new dataclass field: no validator,
reader or writer needs teaching.

Floats follow :mod:`buzzpipe.results.codec`. A ``format_version`` 1 file (before the results
contract) is converted on reading by :func:`convert_version_1`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from buzzpipe.atomic_write import write_text
from buzzpipe.errors import InputError
from buzzpipe.results.codec import INFINITIES, decode_float, encode_float
from buzzpipe.results.records import FORMAT_VERSION, RecordError, StudyResults


def read_results(path: str | os.PathLike) -> StudyResults:
    """Read and check a ``results.json`` file written by a study.

    Parameters
    ----------
    path : str or os.PathLike
        The file (``buzzpipe study --out``, ``buzzpipe replicate``, :func:`write_results`,
        :func:`buzzpipe.write_report`).

    Returns
    -------
    StudyResults
        The results as typed records, checked against ``docs/results_schema.md`` (format 2;
        a format-1 file is converted); :func:`buzzpipe.write_report` renders them again.

    Notes
    -----
    A file that cannot be read, is not JSON or does not follow the format raises one
    :class:`~buzzpipe.errors.InputError` line naming the file and the JSON path of the first
    bad entry.

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
    >>> again.meta["primary_outcome"], again.meta["firms"]
    ('product', 400)
    >>> str(again.models["product"]["controls"].inference.kind)
    'robust'
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read results: {error.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", file=str(path), expected="JSON") from None
    try:
        return results_from_dict(json.loads(text), file=str(path))
    except json.JSONDecodeError as error:
        raise InputError(
            f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            file=str(path),
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to be a results file", file=str(path)) from None


def results_from_dict(data: Any, *, file: str | None = None) -> StudyResults:
    """Typed, checked results from JSON data (format 2, or format 1 converted)."""
    if isinstance(data, Mapping) and data.get("format_version") == 1:
        from buzzpipe.results.version_1 import convert_version_1

        data = convert_version_1(data, file=file)
    walker = _Walker(file)
    if not isinstance(data, Mapping):
        walker.fail("$", "wrong type", data, "an object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        walker.fail(
            "$.format_version",
            "unsupported results format",
            version,
            f"{FORMAT_VERSION} (or 1, converted on reading)",
        )
    results = walker.decode(StudyResults, data, "$")
    if not results.models:
        walker.fail("$.models", "no models", None, "at least one outcome with models")
    return results


def results_to_dict(results: StudyResults) -> dict[str, Any]:
    """The results as JSON data, checked by reading them back (one check per write)."""
    data = encode(results)
    results_from_dict(data)
    return data


def dumps_results(results: StudyResults) -> str:
    """The results as strict JSON text (no NaN or infinity literals), checked first."""
    return (
        json.dumps(results_to_dict(results), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    )


def write_results(results: StudyResults, path: str | os.PathLike) -> None:
    """Check and write ``results.json`` atomically."""
    write_text(path, dumps_results(results))


def validate_results(data: Any, *, file: str | None = None) -> None:
    """Check JSON data against the format; raise ``InputError`` at the first problem."""
    results_from_dict(data, file=file)


# -- encoding ------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Records, enumerations, floats and containers as JSON data (floats through the codec)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        compact = getattr(value, "OMIT_DEFAULTS", False)
        return {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (compact and _is_default(f, getattr(value, f.name)))
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {_key(key): encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if hasattr(value, "item"):  # numpy scalar
        return encode(value.item())
    return str(value)


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return value == f.default
    if f.default_factory is not dataclasses.MISSING:
        return value == f.default_factory()
    return False


def _key(key: Any) -> str:
    return key.value if isinstance(key, Enum) else str(key)


# -- decoding and checking -------------------------------------------------------------------


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class _Walker:
    """Builds records from JSON data, raising at the first entry that breaks the types."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(
        self, where: str, problem: str, value: object = None, expected: str | None = None
    ) -> typing.NoReturn:
        if isinstance(value, Mapping | list):
            value = f"{type(value).__name__} of {len(value)}"
        raise InputError(problem, file=self.file, column=where, value=value, expected=expected)

    def decode(self, hint: Any, value: Any, where: str, check: str | None = None) -> Any:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
            if value is None and len(options) < len(typing.get_args(hint)):
                return None
            (hint,) = options
            origin = typing.get_origin(hint)
        if hint is Any:
            return value
        if dataclasses.is_dataclass(hint):
            return self.record(hint, value, where)
        if isinstance(hint, type) and issubclass(hint, Enum):
            try:
                return hint(value)
            except ValueError:
                allowed = ", ".join(member.value for member in hint)
                self.fail(where, "unknown value", value, f"one of {allowed}")
        if hint is float:
            return self.number(value, where, check)
        if hint is bool:
            if not isinstance(value, bool):
                self.fail(where, "wrong type", value, "true or false")
            return value
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(where, "wrong type", value, "an integer")
            if check == "non_negative" and value < 0:
                self.fail(where, "negative count", value, "a non-negative integer")
            return value
        if hint is str:
            if not isinstance(value, str):
                self.fail(where, "wrong type", value, "a string")
            return value
        if origin is list:
            if not isinstance(value, list):
                self.fail(where, "wrong type", value, "a list")
            (item,) = typing.get_args(hint)
            return [
                self.decode(item, entry, f"{where}[{i}]", check) for i, entry in enumerate(value)
            ]
        if origin is tuple:
            items = typing.get_args(hint)
            if not isinstance(value, list) or len(value) != len(items):
                self.fail(where, "wrong shape", value, f"a list of {len(items)}")
            decoded = tuple(
                self.decode(item, entry, f"{where}[{i}]")
                for i, (item, entry) in enumerate(zip(items, value, strict=True))
            )
            if len(decoded) == 2 and decoded[0] > decoded[1]:
                self.fail(where, "segment ends in the wrong order", f"[{value[0]}, {value[1]}]")
            return decoded
        if origin is dict:
            if not isinstance(value, Mapping):
                self.fail(where, "wrong type", value, "an object")
            key_hint, item = typing.get_args(hint)
            return {
                self.decode(key_hint, key, f"{where}.{key}"): self.decode(
                    item, entry, f"{where}.{key}"
                )
                for key, entry in value.items()
            }
        raise TypeError(f"results contract: no rule for {hint!r} at {where}")

    def number(self, value: Any, where: str, check: str | None) -> float:
        """A float in the codec: a finite number, "inf", "-inf" or null (NaN)."""
        if value is None:
            return math.nan
        if isinstance(value, str) and value in INFINITIES:
            decoded = decode_float(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, "wrong type", value, 'a number, "inf", "-inf" or null')
        elif not math.isfinite(value):
            self.fail(where, "not finite", value, 'a finite number ("inf" for unbounded)')
        else:
            decoded = float(value)
        if check == "probability" and not 0.0 <= decoded <= 1.0:
            self.fail(where, "out of range", value, "a number in [0, 1]")
        if check == "non_negative" and decoded < 0:
            self.fail(where, "negative value", value, "a number >= 0")
        return decoded

    def record(self, cls: type, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            self.fail(where, "wrong type", value, "an object")
        hints = _hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        for key in value:
            if key not in names:
                self.fail(f"{where}.{key}", "unknown entry", None, ", ".join(sorted(names)))
        arguments = {}
        for f in dataclasses.fields(cls):
            if f.name not in value:
                required = (
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                )
                if required:
                    self.fail(f"{where}.{f.name}", "missing entry", None, "present")
                continue
            hint = hints[f.name]
            if hint is float or _optional_of(hint) is float:
                arguments[f.name] = self.optional_number(hint, value[f.name], f, where)
            else:
                arguments[f.name] = self.decode(
                    hint, value[f.name], f"{where}.{f.name}", f.metadata.get("check")
                )
        try:
            return cls(**arguments)
        except RecordError as error:
            self.fail(where + error.where, error.problem, error.value, error.expected or None)

    def optional_number(self, hint: Any, value: Any, f: Any, where: str) -> float | None:
        """``float`` fields read null as NaN; ``float | None`` fields as None."""
        if value is None and hint is not float:
            return None
        return self.number(value, f"{where}.{f.name}", f.metadata.get("check"))


def _optional_of(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return None
