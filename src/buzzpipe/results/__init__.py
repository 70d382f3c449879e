"""results stage: the contract between the study and the report (see ../shared/DESIGN.md).

``records`` (the result dataclasses, and JSON data to records and back), ``vocabulary`` (every
enumeration ``results.json`` uses), ``codec`` (floats JSON cannot hold), ``walk`` (the generic,
type-led walk that reads and checks records in one pass), ``contract`` (the one reader, checker
and writer of ``results.json`` files, format 2, ``format``), ``version_1`` and ``version_2`` (the
conversion of format-1 and format-2 files) and ``findings``
(the catalogue of findings: per finding and verdict state, its label and sentence). It knows
nothing of how the numbers were estimated or how they are shown.
"""

from buzzpipe.results.codec import decode_float, encode_float
from buzzpipe.results.contract import read_results, write_results
from buzzpipe.results.format import FORMAT_VERSION
from buzzpipe.results.records import (
    ALL_REGIONS,
    CounterfactualCell,
    CounterfactualResult,
    DescriptiveRow,
    Descriptives,
    Estimate,
    Hypothesis,
    Inference,
    Interval,
    Meta,
    ModelResult,
    Note,
    ProgrammeNote,
    RunSpecification,
    Source,
    StudyResults,
    Term,
    Verdict,
    dumps_results,
    results_from_dict,
    results_to_dict,
    validate_results,
)

__all__ = [
    "ALL_REGIONS",
    "FORMAT_VERSION",
    "CounterfactualCell",
    "CounterfactualResult",
    "DescriptiveRow",
    "Descriptives",
    "Estimate",
    "Hypothesis",
    "Inference",
    "Interval",
    "Meta",
    "ModelResult",
    "Note",
    "ProgrammeNote",
    "RunSpecification",
    "Source",
    "StudyResults",
    "Term",
    "Verdict",
    "decode_float",
    "dumps_results",
    "encode_float",
    "read_results",
    "results_from_dict",
    "results_to_dict",
    "validate_results",
    "write_results",
]
