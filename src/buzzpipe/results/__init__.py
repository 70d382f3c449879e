"""results stage: the contract between the study and the report (see ../shared/DESIGN.md).

``records`` (the result dataclasses), ``vocabulary`` (every enumeration ``results.json`` uses),
``codec`` (floats JSON cannot hold), ``contract`` (the one reader, checker and writer of
``results.json``, format 2), ``version_1`` (the conversion of format-1 files) and ``findings``
(the catalogue of findings: per finding and verdict state, its label and sentence). It knows
nothing of how the numbers were estimated or how they are shown.
"""

from buzzpipe.results.codec import decode_float, encode_float
from buzzpipe.results.contract import (
    dumps_results,
    read_results,
    results_from_dict,
    results_to_dict,
    validate_results,
    write_results,
)
from buzzpipe.results.records import (
    ALL_REGIONS,
    FORMAT_VERSION,
    CounterfactualCell,
    CounterfactualResult,
    DescriptiveRow,
    Descriptives,
    Estimate,
    Inference,
    Interval,
    ModelResult,
    StudyResults,
    Term,
    Verdict,
)

__all__ = [
    "ALL_REGIONS",
    "FORMAT_VERSION",
    "CounterfactualCell",
    "CounterfactualResult",
    "DescriptiveRow",
    "Descriptives",
    "Estimate",
    "Inference",
    "Interval",
    "ModelResult",
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
