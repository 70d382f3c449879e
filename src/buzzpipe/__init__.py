"""buzzpipe: local buzz versus global pipelines, from firm surveys to findings.

Data flows one way: files -> survey -> estimate -> study -> report; synth and simulate produce
surveys. Heavy submodules load on first use so the command line starts quickly.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it, imported on first access
_LAZY = {
    "fit": "buzzpipe.estimate",
    "Survey": "buzzpipe.survey",
    "read_survey": "buzzpipe.survey",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'buzzpipe' has no attribute {name!r}")
