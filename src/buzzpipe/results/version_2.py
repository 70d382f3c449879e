"""Reading a ``format_version`` 2 ``results.json`` (the results contract before format 3).

Format 2 kept the study's notes (``meta.notes``) as sentences; format 3 keeps each as a
:class:`~buzzpipe.results.records.Note` record. A format-2 note did not record its kind, so it
becomes a note of kind ``unclassified`` with its sentence as ``text``: nothing reads the
sentence to guess a kind. Format-1 files are first converted to format 2 (``version_1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from buzzpipe.results.version_1 import converted
from buzzpipe.results.vocabulary import NoteKind

VERSION = 3


def convert_version_2(data: Mapping[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """Format 3 data from format 2 data; data it cannot convert raises one ``InputError`` line
    saying the file must be regenerated."""
    return converted(_convert, data, version=2, file=file)


def _convert(data: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(data)
    meta = dict(data.get("meta") or {})
    if "notes" in meta:
        meta["notes"] = [_note(note) for note in meta["notes"]]
    converted["meta"] = meta
    converted["format_version"] = VERSION
    return converted


def _note(note: Any) -> dict[str, Any]:
    if not isinstance(note, str):
        raise TypeError(f"a note that is not text: {note!r}")
    return {"kind": NoteKind.UNCLASSIFIED.value, "text": note}
