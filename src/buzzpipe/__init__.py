"""buzzpipe: local buzz versus global pipelines, from firm surveys to findings.

Data flows one way: files -> survey -> estimate -> study -> report; synth and simulate produce
surveys. The public API is this module's names (``import buzzpipe as bp``; ``dir(bp)`` lists
them); each loads its stage on first use so the command line starts quickly.

Estimation (``buzzpipe.estimate``, usable on any DataFrame):
    fit, Fit, margins, wald_test, lincom, nlcom, suest, fieller_ratio, WildScoreBootstrap,
    bootstrap
Surveys (``buzzpipe.survey``, ``buzzpipe.synth``, ``buzzpipe.simulate``):
    read_survey, read_edge_list, Survey, describe, synthesize, simulate
The study and its report (``buzzpipe.study``, ``buzzpipe.report``):
    run_study, read_results, write_report
"""

import sys
from importlib import import_module
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

# public name -> (module that defines it, its name there), imported on first access
_LAZY: dict[str, tuple[str, str]] = {
    "fit": ("buzzpipe.estimate.fitting", "fit"),
    "Fit": ("buzzpipe.estimate.result", "Fit"),
    "margins": ("buzzpipe.estimate.margins", "margins"),
    "wald_test": ("buzzpipe.estimate.hypothesis_tests", "wald_test"),
    "lincom": ("buzzpipe.estimate.hypothesis_tests", "lincom"),
    "nlcom": ("buzzpipe.estimate.hypothesis_tests", "nlcom"),
    "suest": ("buzzpipe.estimate.suest", "suest"),
    "fieller_ratio": ("buzzpipe.estimate.fieller", "fieller_ratio"),
    "WildScoreBootstrap": ("buzzpipe.estimate.wild_bootstrap", "WildScoreBootstrap"),
    "bootstrap": ("buzzpipe.estimate.bootstrap", "bootstrap_fit"),
    "read_survey": ("buzzpipe.survey.readers", "read_survey"),
    "read_edge_list": ("buzzpipe.survey.readers", "read_edge_list"),
    "Survey": ("buzzpipe.survey.model", "Survey"),
    "describe": ("buzzpipe.survey.describe", "describe"),
    "synthesize": ("buzzpipe.synth", "synthesize"),
    "simulate": ("buzzpipe.simulate.run", "simulate"),
    "run_study": ("buzzpipe.study.battery", "run_study"),
    "read_results": ("buzzpipe.results", "read_results"),
    "write_report": ("buzzpipe.report.write_report", "write_report"),
}

__all__ = ["__version__", *_LAZY]


def _load(name: str) -> Any:
    module, attribute = _LAZY[name]
    return getattr(import_module(module), attribute)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _load(name)
    raise AttributeError(f"module 'buzzpipe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *(name for name in globals() if not name.startswith("_"))})


class _Package(ModuleType):
    """``bp.simulate`` is the function even after the subpackage ``buzzpipe.simulate`` loads.

    The import system sets a loaded subpackage as an attribute of its parent, which would hide
    the function behind the module of the same name; the submodules stay importable by name
    (``from buzzpipe.simulate.run import simulate``).
    """

    @property
    def simulate(self) -> Any:
        return _load("simulate")

    @simulate.setter
    def simulate(self, module: Any) -> None:
        pass  # the subpackage, set by the import system; sys.modules keeps it


sys.modules[__name__].__class__ = _Package
