"""The generic walk between JSON data and the result records, led by their type hints.

:func:`encode` writes records, enumerations and floats (through the codec) as JSON data;
:class:`Walker` builds records from JSON data and stops at the first entry that breaks their
types with one :class:`~buzzpipe.errors.InputError` line naming its JSON path. It knows no
particular record: a new field is a new dataclass field, and nothing here needs teaching.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from enum import Enum
from functools import cache
from typing import Any

from buzzpipe.errors import InputError
from buzzpipe.results.codec import INFINITIES, decode_float, encode_float


class RecordError(ValueError):
    """A record that breaks its own rule; ``where`` continues the JSON path of the record."""

    def __init__(self, where: str, problem: str, value: object = None, expected: str = ""):
        super().__init__(problem)
        self.where, self.problem, self.value, self.expected = where, problem, value, expected


# -- encoding ------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Records, enumerations, floats and containers as JSON data (floats through the codec).

    A record whose class sets ``OMIT_DEFAULTS``, or a field whose metadata sets
    ``omit_default``, leaves out entries at their default."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        compact = getattr(value, "OMIT_DEFAULTS", False)
        return {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (
                (compact or f.metadata.get("omit_default"))
                and _is_default(f, getattr(value, f.name))
            )
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


class Walker:
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
