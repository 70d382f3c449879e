"""``results.json``: the one reader, checker and writer of the study's results (format 2).

Reading and checking are one walk: :func:`results_from_dict` (in ``records``) builds the typed
records from JSON data through :class:`~buzzpipe.results.walk.Walker`, led by the dataclasses'
type hints, and stops at the first entry that breaks them with one
:class:`~buzzpipe.errors.InputError` line naming the JSON path (in the ``column`` slot), the
value and what was expected. Writing encodes the records and reads the encoding back through
the same walk before a byte is written, so a file that :func:`write_results` wrote always
reads. A new field is a new dataclass field: no validator, reader or writer needs teaching.

Floats follow :mod:`buzzpipe.results.codec`. A ``format_version`` 1 file (before the results
contract) is converted on reading by :func:`convert_version_1`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from buzzpipe.atomic_write import write_text
from buzzpipe.errors import InputError
from buzzpipe.results.records import (
    StudyResults,
    dumps_results,
    results_from_dict,
    results_to_dict,
    validate_results,
)
from buzzpipe.results.walk import encode

__all__ = [
    "dumps_results",
    "encode",
    "read_results",
    "results_from_dict",
    "results_to_dict",
    "validate_results",
    "write_results",
]


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
    >>> again.meta.primary_outcome, again.meta.firms
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


def write_results(results: StudyResults, path: str | os.PathLike) -> None:
    """Check and write ``results.json`` atomically."""
    write_text(path, dumps_results(results))
