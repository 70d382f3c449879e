"""What the study could not produce, as notes: a model or part the data cannot support leaves a
``not_assessed`` note (outcome, part, model or term, the reason in one word as ``cause`` and the
estimator's line as ``reason``) in ``meta.notes`` instead of stopping the study or leaving a
silent gap.

The cause is the error's own (``buzzpipe.errors``: separation, non-convergence, a dropped term,
no variation, too few observations); any other refusal of the data is ``not_estimable``.
"""

from __future__ import annotations

from buzzpipe.errors import BuzzpipeError
from buzzpipe.results import Note, StudyResults
from buzzpipe.results.records import REASON_WORDS
from buzzpipe.results.vocabulary import NotAssessedReason, NoteKind, StudyPart


def reason_of(error: BuzzpipeError) -> NotAssessedReason:
    """The one-word reason an error stands for (``not_estimable`` when it names none)."""
    return NotAssessedReason(getattr(error, "reason", NotAssessedReason.NOT_ESTIMABLE))


def record_not_assessed(
    results: StudyResults,
    outcome: str,
    part: StudyPart,
    error: BuzzpipeError | str,
    *,
    model: str | None = None,
    term: str | None = None,
    cause: NotAssessedReason | None = None,
    detail: str | None = None,
    quantity: str | None = None,
) -> Note:
    """Add the note of a quantity the study could not produce, and return it; ``detail``
    replaces the error's line where the part says more (which programme, which cells)."""
    if cause is None:
        known = isinstance(error, BuzzpipeError)
        cause = reason_of(error) if known else NotAssessedReason.NOT_ESTIMABLE
    line = detail or str(error)
    note = Note(
        NoteKind.NOT_ASSESSED,
        "",
        outcome=outcome or None,
        model=model,
        term=term,
        quantity=quantity,
        reason=line,
        part=part,
        cause=cause,
    )
    where = f"{outcome}: " if outcome else ""
    note.text = f"{where}{note.subject()} not assessed ({REASON_WORDS[cause]}): {line}"
    results.meta.notes.append(note)
    return note
