"""Reading a ``format_version`` 2 ``results.json`` (the results contract before format 3).

Format 2 kept three kinds of facts as sentences; format 3 keeps them as records:

- the study's notes (``meta.notes``) become :class:`~buzzpipe.results.records.Note` records.
  A format-2 note did not record its kind, so it becomes a note of kind ``unclassified`` with
  its sentence as ``text``: nothing guesses a kind from its words;
- the hypotheses of estimates (``"breadth_international - breadth_regional = 0"``,
  ``"b[pipeline_exposure] = 0 (923 firms)"``) become
  :class:`~buzzpipe.results.records.Hypothesis` records;
- the notes of policy programmes become :class:`~buzzpipe.results.records.ProgrammeNote`
  records.

Like ``version_1``, this module is the only code that reads those sentences, once, on reading a
file; a hypothesis or programme note the study of format 2 wrote in words this module does not
know is kept as written (kind ``text``). Format-1 files are first converted to format 2
(``version_1``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from buzzpipe.results.version_1 import converted, term_record
from buzzpipe.results.vocabulary import HypothesisKind, NoteKind, ProgrammeNoteKind

VERSION = 3

_ZERO = re.compile(
    r"^b\[(?P<term>[^\]]+)\] = 0(?: \((?P<firms>\d+) firms(?: in (?P<cells>\d+) cells)?\))?$"
)
_EQUAL = re.compile(r"^b\[(?P<term>[^\]]+)\] equal for (?P<outcomes>.+)$")
_DIFFERENCE = re.compile(r"^(?P<first>\S+) - (?P<second>\S+) = 0$")
_RATIO = re.compile(r"^(?P<first>\S+) / (?P<second>\S+)$")
_INTERACTIONS = re.compile(r"^all (?P<count>\d+) breadth x (?P<moderator>\S+) interactions = 0$")
_PARTNER_TYPES = re.compile(
    r"^no partner type at the (?P<scale>\w+) scale matters \((?P<count>\d+) terms\)$"
)
_CHANGES = re.compile(
    r"^change from one more (?P<first>\w+) (?P<how>/|minus) one more (?P<second>\w+) kind of "
    r"partner$"
)
_CONTRAST = re.compile(r"^(?P<contrast>dy/dx|\+1) of (?P<term>.+)$")
_SUPERMODULARITY = "b_both - b_local_only - b_global_only <= 0"
_INTERACTION_PROBABILITY = "mean of F(l+1,g+1) - F(l+1,g) - F(l,g+1) + F(l,g)"
_PLUS_ONE = "one more kind of partner"

_NOT_CAUSED = re.compile(r"^predicted under the (fitted )?model, not caused", re.IGNORECASE)
_ELIGIBILITY = re.compile(
    r"^One more kind of (?P<scale>\w+) partner; firms already at the cap of (?P<cap>\d+) "
    r"partner types at that scale are not eligible\.$"
)
_SUBSTITUTED = re.compile(
    r"^The survey has no (?P<wanted>\w+) scale: the \w+ programme adds a (?P<scale>\w+) "
    r"partner type instead"
)
_ALL_ELIGIBLE = re.compile(
    r"^(?P<treated>[\d,]+) firms treated is more than the (?P<eligible>[\d,]+) eligible firms "
    r"(?:in total|in (?P<regions>\d+) of the regions): every eligible firm there is treated\.$"
)
_DROPPED = re.compile(r"^(?P<dropped>\d+) of (?P<replicates>\d+) bootstrap replicates dropped")


def convert_version_2(data: Mapping[str, Any], *, file: str | None = None) -> dict[str, Any]:
    """Format 3 data from format 2 data; data it cannot convert raises one ``InputError`` line
    saying the file must be regenerated."""
    return converted(_convert, data, version=2, file=file)


def hypothesis_record(text: str) -> dict[str, Any] | None:
    """A format-2 hypothesis sentence as a format-3 record (None for an empty one)."""
    text = text.strip()
    if not text:
        return None
    kind = HypothesisKind
    if match := _ZERO.match(text):
        record: dict[str, Any] = {"kind": kind.ZERO.value, "terms": [term_record(match["term"])]}
        record.update({key: int(match[key]) for key in ("firms", "cells") if match[key]})
        return record
    if match := _EQUAL.match(text):
        return {
            "kind": kind.EQUAL_ACROSS_OUTCOMES.value,
            "terms": [term_record(match["term"])],
            "outcomes": match["outcomes"].split(", "),
        }
    if match := _INTERACTIONS.match(text):
        moderator, count = match["moderator"], int(match["count"])
        return {"kind": kind.INTERACTIONS_ZERO.value, "moderator": moderator, "count": count}
    if match := _PARTNER_TYPES.match(text):
        scales, count = [match["scale"]], int(match["count"])
        return {"kind": kind.PARTNER_TYPES_ZERO.value, "scales": scales, "count": count}
    if match := _CHANGES.match(text):
        how = kind.PLUS_ONE_RATIO if match["how"] == "/" else kind.PLUS_ONE_DIFFERENCE
        return {"kind": how.value, "scales": [match["first"], match["second"]]}
    if match := _CONTRAST.match(text):
        contrast = kind.MARGINAL_EFFECT if match["contrast"] == "dy/dx" else kind.PLUS_ONE
        return {"kind": contrast.value, "terms": [term_record(match["term"])]}
    if text.startswith(_SUPERMODULARITY):
        return {"kind": kind.SUPERMODULARITY.value}
    if text.startswith(_INTERACTION_PROBABILITY):
        return {"kind": kind.INTERACTION_PROBABILITY.value}
    if text == _PLUS_ONE:
        return {"kind": kind.PLUS_ONE.value}  # its breadth term was not written
    for pattern, pair in ((_DIFFERENCE, kind.DIFFERENCE), (_RATIO, kind.RATIO)):
        if match := pattern.match(text):
            terms = [term_record(match["first"]), term_record(match["second"])]
            return {"kind": pair.value, "terms": terms}
    return {"kind": kind.TEXT.value, "text": text}


def programme_note_record(text: str) -> dict[str, Any]:
    """A format-2 note of a policy programme as a format-3 record."""
    kind = ProgrammeNoteKind
    if _NOT_CAUSED.match(text):
        return {"kind": kind.NOT_CAUSED.value}
    if match := _ELIGIBILITY.match(text):
        return {"kind": kind.ELIGIBILITY.value, "scale": match["scale"], "cap": int(match["cap"])}
    if match := _SUBSTITUTED.match(text):
        scale, wanted = match["scale"], match["wanted"]
        return {"kind": kind.SCALE_SUBSTITUTED.value, "scale": scale, "wanted_scale": wanted}
    if match := _ALL_ELIGIBLE.match(text):
        record = {
            "kind": kind.ALL_ELIGIBLE_TREATED.value,
            "firms_treated": int(match["treated"].replace(",", "")),
            "eligible": int(match["eligible"].replace(",", "")),
        }
        if match["regions"]:
            record["regions"] = int(match["regions"])
        return record
    if match := _DROPPED.match(text):
        dropped, replicates = int(match["dropped"]), int(match["replicates"])
        return {"kind": kind.REPLICATES_DROPPED.value, "dropped": dropped, "replicates": replicates}
    return {"kind": kind.TEXT.value, "text": text}


def _estimate(record: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(record)
    if isinstance(record.get("hypothesis"), str):
        converted["hypothesis"] = hypothesis_record(record["hypothesis"])
    return converted


def _estimates(records: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _estimate(record) for name, record in records.items()}


def _sections(sections: Mapping[str, Any]) -> dict[str, Any]:
    return {section: _estimates(records) for section, records in sections.items()}


def _model(record: Mapping[str, Any]) -> dict[str, Any]:
    model = dict(record)
    for key in ("terms", "odds_ratios", "marginal_effects"):
        if key in record:
            model[key] = _estimates(record[key])
    if "sensitivity" in record:
        model["sensitivity"] = _sections(record["sensitivity"])
    return model


def _convert(data: Mapping[str, Any]) -> dict[str, Any]:
    converted = dict(data)
    meta = dict(data.get("meta") or {})
    if "notes" in meta:
        meta["notes"] = [_note(note) for note in meta["notes"]]
    converted["meta"] = meta
    converted["models"] = {
        outcome: {name: _model(model) for name, model in models.items()}
        for outcome, models in data["models"].items()
    }
    for key in ("tests", "descriptions"):
        converted[key] = _sections(data.get(key, {}))
    converted["counterfactuals"] = [
        {**record, "notes": [programme_note_record(note) for note in record.get("notes", [])]}
        for record in data.get("counterfactuals", [])
    ]
    converted["format_version"] = VERSION
    return converted


def _note(note: Any) -> dict[str, Any]:
    if not isinstance(note, str):
        raise TypeError(f"a note that is not text: {note!r}")
    return {"kind": NoteKind.UNCLASSIFIED.value, "text": note}
