"""The user's specification: which outcomes, which controls, which fixed effects.

The defaults are the published study's (every outcome the survey has; log employees, foreign
share, industry and region fixed effects, and the optional controls the survey has). A user
names their own with ``--outcomes``/``--controls`` or a study file (TOML)::

    outcomes = ["product", "process"]
    controls = "np.log(employees) + firm_age"
    fixed_effects = ["industry", "region"]
    primary_outcome = "process"   # the outcome whose verdicts are the headline
    inference = "robust"          # which p the verdicts read: headline, robust or cluster
    alpha = 0.01                  # the verdicts' threshold (Holm-adjusted p below it)
    engine = "dask"               # where the fits run (docs/scale.md); optional
    scheduler = "tcp://scheduler:8786"   # with engine = "dask"; optional

Controls are a formula's right-hand side: terms joined by ``+``, each an expression of survey
columns (``np.log(employees)``, ``C(industry)``, ``firm_age``); a bare column holding text is a
factor (``industry`` becomes ``C(industry)``). A control naming a column the survey lacks is
left out with a note, not an error; a specification that cannot be read is one line, and
in a study file that line names the file, the key and the value.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from buzzpipe.errors import InputError
from buzzpipe.results.vocabulary import InferenceKind
from buzzpipe.study.verdicts import ALPHA, DEFAULT_INFERENCE, INFERENCE_CHOICES
from buzzpipe.survey.schema import NOVELTY, OUTCOMES

KNOWN_OUTCOMES: tuple[str, ...] = (*OUTCOMES, NOVELTY)
ENGINE_KEYS: tuple[str, ...] = ("engine", "scheduler")  # where it runs, not what (study/engine.py)
STUDY_FILE_KEYS: tuple[str, ...] = (
    "outcomes",
    "controls",
    "fixed_effects",
    "primary_outcome",
    "inference",
    "alpha",
    *ENGINE_KEYS,
)
# names a control's expression may call or read that are not survey columns
_FUNCTIONS = frozenset({"np", "C", "log", "exp", "sqrt", "I", "center", "scale", "poly"})
# what a control's expression may hold: names, calls, attributes, numbers and arithmetic
_READABLE = (
    ast.Expression, ast.Name, ast.Call, ast.Attribute, ast.Load, ast.Constant, ast.BinOp,
    ast.UnaryOp, ast.operator, ast.unaryop, ast.keyword,
)  # fmt: skip


@dataclass(frozen=True)
class Specification:
    """The outcomes, controls, headline outcome, verdict inference and threshold a study runs
    on (None: the published study's)."""

    outcomes: tuple[str, ...] | None = None
    controls: tuple[str, ...] | None = None  # formula terms as the user wrote them
    fixed_effects: tuple[str, ...] = field(default_factory=tuple)
    primary_outcome: str | None = None
    inference: str | None = None  # study.verdicts.INFERENCE_CHOICES
    alpha: float | None = None

    @property
    def is_default(self) -> bool:
        return (
            self.outcomes is None
            and self.controls is None
            and not self.fixed_effects
            and self.primary_outcome is None
            and self.inference is None
            and self.alpha is None
        )

    @property
    def verdict_inference(self) -> str:
        return self.inference or DEFAULT_INFERENCE

    @property
    def verdict_alpha(self) -> float:
        return ALPHA if self.alpha is None else self.alpha


def parse_outcomes(text: str | Sequence[str]) -> tuple[str, ...]:
    """ "product,process" (or a list) as outcome names; an unknown name is one line."""
    names = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    names = [name for name in names if name]
    if not names:
        raise InputError("--outcomes names no outcome", expected=", ".join(KNOWN_OUTCOMES))
    for name in names:
        if name not in KNOWN_OUTCOMES:
            raise InputError("unknown outcome", value=name, expected=", ".join(KNOWN_OUTCOMES))
    return tuple(dict.fromkeys(names))


def _split_terms(text: str, separators: str = "+") -> list[str]:
    """A right-hand side split at its top-level separators (not inside parentheses; ``**`` is
    a power, not an interaction)."""
    terms, depth, start, index = [], 0, 0, 0
    while index < len(text):
        character = text[index]
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth < 0:
                raise InputError("unbalanced parentheses in --controls", value=text)
        elif text.startswith("**", index):
            index += 1
        elif character in separators and depth == 0:
            terms.append(text[start:index].strip())
            start = index + 1
        index += 1
    if depth != 0:
        raise InputError("unbalanced parentheses in --controls", value=text)
    terms.append(text[start:].strip())
    return terms


def term_columns(term: str) -> list[str]:
    """The survey columns a control term reads (``np.log(employees)`` -> ``employees``);
    a term that is not an expression of columns (a typo, an operator left over) is one line."""
    columns: list[str] = []
    for part in _split_terms(term, ":*"):
        try:
            tree = ast.parse(part.strip(), mode="eval")
        except SyntaxError:
            raise InputError("a control term that cannot be read", value=term) from None
        nodes = list(ast.walk(tree))
        if not all(isinstance(node, _READABLE) for node in nodes):
            raise InputError("a control term that cannot be read", value=term)
        # a function's name (np.log, C) is not a column; its arguments are
        called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
        called |= {id(node.value) for node in nodes if isinstance(node, ast.Attribute)}
        columns += [
            node.id
            for node in nodes
            if isinstance(node, ast.Name) and id(node) not in called and node.id not in _FUNCTIONS
        ]
    if not columns:
        raise InputError("a control term that reads no survey column", value=term)
    return list(dict.fromkeys(columns))


def parse_controls(text: str) -> tuple[str, ...]:
    """ "np.log(employees) + industry" as terms, each checked to be readable."""
    if not text.strip():
        raise InputError("--controls is empty", expected='terms joined by "+"')
    terms = _split_terms(text)
    if any(not term for term in terms):
        raise InputError("an empty term in --controls (two '+' in a row?)", value=text)
    for term in terms:
        term_columns(term)
    return tuple(dict.fromkeys(terms))


def _read_toml(path: str | Path) -> dict[str, Any]:
    """The study file's keys; an unreadable file or an unknown key is one line."""
    file = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError("cannot read the study file", file=file, value=str(error)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError("not a TOML file", file=file, value=str(error)) from None
    unknown = [key for key in data if key not in STUDY_FILE_KEYS]
    if unknown:
        raise InputError(
            "unknown key in the study file",
            file=file,
            value=unknown[0],
            expected=", ".join(STUDY_FILE_KEYS),
        )
    return data


def read_study_engine(path: str | Path) -> tuple[str | None, str | None]:
    """The study file's ``engine`` and ``scheduler`` (None where it names none): where the
    study's fits run, as ``--engine`` and ``--scheduler``, which override them."""
    from buzzpipe.study.engine import ENGINES

    data = _read_toml(path)
    engine, scheduler = data.get("engine"), data.get("scheduler")
    if engine is not None and engine not in ENGINES:
        raise InputError(
            "unknown engine in the study file",
            file=str(path),
            key="engine",
            value=engine,
            expected=" | ".join(ENGINES),
        )
    if scheduler is not None and not isinstance(scheduler, str):
        raise InputError(
            "scheduler must be an address such as tcp://host:8786",
            file=str(path),
            key="scheduler",
            value=scheduler,
        )
    return engine, scheduler


def read_study_file(path: str | Path) -> Specification:
    """A study file (TOML) naming ``outcomes``, ``controls``, ``fixed_effects``,
    ``primary_outcome``, ``inference`` and ``alpha`` (each optional; its ``engine`` and
    ``scheduler``: :func:`read_study_engine`); a key or value it cannot take is one line naming
    the file, the key and the value."""
    file = str(path)
    data = _read_toml(path)

    def refuse(key: str, problem: str, expected: str) -> InputError:
        return InputError(problem, file=file, key=key, value=data[key], expected=expected)

    def named(key: str, parse: Any) -> Any:
        """A value parsed as the command line parses it, its error naming file and key."""
        try:
            return parse(data[key])
        except InputError as error:
            problem = str(error).replace("--outcomes ", "").replace("--controls ", "")
            problem = problem.replace(" in --controls", "")
            raise InputError(problem, file=file, key=key) from None

    outcomes = None
    if "outcomes" in data:
        if not isinstance(data["outcomes"], list | str):
            raise refuse("outcomes", "not a list of outcomes", 'a list such as ["product"]')
        outcomes = named("outcomes", parse_outcomes)
    controls = data.get("controls")
    if isinstance(controls, list) and all(isinstance(term, str) for term in controls):
        data["controls"] = controls = " + ".join(controls)
    if controls is not None and not isinstance(controls, str):
        raise refuse("controls", "controls must be a string or a list of terms", "formula terms")
    parsed_controls = named("controls", parse_controls) if controls is not None else None
    fixed_effects = data.get("fixed_effects", [])
    if not isinstance(fixed_effects, list) or not all(
        isinstance(name, str) and name.isidentifier() for name in fixed_effects
    ):
        raise refuse("fixed_effects", "fixed_effects must be a list of column names", '["region"]')
    primary = data.get("primary_outcome")
    if primary is not None:
        choices = outcomes or OUTCOMES
        if not isinstance(primary, str) or primary not in choices:
            raise refuse(
                "primary_outcome",
                "not a binary outcome the study models",
                ", ".join(name for name in choices if name != NOVELTY),
            )
        if primary == NOVELTY:  # the verdicts' rules read binary outcomes' tests
            raise refuse("primary_outcome", "the ordered outcome has no verdicts", "product")
    inference = data.get("inference")
    if inference is not None and inference not in INFERENCE_CHOICES:
        raise refuse("inference", "unknown verdict inference", ", ".join(INFERENCE_CHOICES))
    alpha = data.get("alpha")
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise refuse("alpha", "alpha must be a number between 0 and 1", "such as 0.05")
        alpha = float(alpha)
    return Specification(
        outcomes=outcomes,
        controls=parsed_controls,
        fixed_effects=tuple(fixed_effects),
        primary_outcome=primary,
        inference=inference,
        alpha=alpha,
    )


def merged(base: Specification, outcomes: str | None, controls: str | None) -> Specification:
    """A study file's specification with the command line's choices on top."""
    return replace(
        base,
        outcomes=parse_outcomes(outcomes) if outcomes is not None else base.outcomes,
        controls=parse_controls(controls) if controls is not None else base.controls,
    )


def _is_text(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or pd.api.types.is_bool_dtype(series)
    )


def resolve_controls(
    frame: pd.DataFrame, specification: Specification, default: tuple[list[str], list[str]]
) -> tuple[list[str], list[str], list[str]]:
    """(formula terms, columns they read, notes) of the controls the study runs on: the
    published study's (``default``) unless the user named theirs; fixed effects as factors.
    A term reading a column the survey lacks is left out with a note."""
    if specification.controls is None and not specification.fixed_effects:
        return *default, []
    requested = list(default[0]) if specification.controls is None else []
    if specification.controls is not None:
        requested = list(specification.controls)
    requested += [f"C({name})" for name in specification.fixed_effects]
    from buzzpipe.study import engine

    terms: list[str] = []
    columns: list[str] = []
    notes: list[str] = []
    typed = engine.current().meta(frame)  # on dask: the columns its rows have on the workers
    for term in dict.fromkeys(requested):
        needed = term_columns(term)
        missing = [column for column in needed if column not in typed.columns]
        if missing:
            notes.append(f"Control {term} left out: the survey has no column {', '.join(missing)}.")
            continue
        if term in typed.columns and _is_text(typed[term]):
            term = f"C({term})"  # a column of text is a factor, as Stata's i.industry
        terms.append(term)
        columns.extend(needed)
    if not terms:
        raise InputError(
            "none of the controls is in the survey",
            value=" + ".join(requested),
            expected="columns of the survey",
        )
    return list(dict.fromkeys(terms)), list(dict.fromkeys(columns)), notes


INFERENCE_WORDS = {
    "headline": "the headline rule (wild cluster score bootstrap by region where computed)",
    InferenceKind.ROBUST: "firm-level robust p-values",
    InferenceKind.CLUSTER: "region-clustered p-values where computed",
}


def describe(
    specification: Specification,
    outcomes: Sequence[str],
    terms: Sequence[str],
    primary_outcome: str | None = None,
) -> str:
    """One sentence for the report: which specification ran (and, given the headline
    outcome, what the verdicts read)."""
    who = "the published study's" if specification.is_default else "the user's"
    text = (
        f"Specification ({who}): outcomes {', '.join(outcomes)}; controls "
        f"{' + '.join(terms)} in every model with controls, beside partner breadth"
    )
    if primary_outcome:
        text += (
            f"; verdicts headed by {primary_outcome}, read on "
            f"{INFERENCE_WORDS[specification.verdict_inference]} at "
            f"{specification.verdict_alpha:g}, Holm-adjusted"
        )
    return text + "."


def as_dict(specification: Specification) -> dict[str, Any]:
    """What the user chose, as the study records it in ``meta`` (nothing for a default)."""
    chosen: dict[str, Any] = {}
    if specification.outcomes is not None:
        chosen["outcomes"] = list(specification.outcomes)
    if specification.controls is not None:
        chosen["controls"] = list(specification.controls)
    if specification.fixed_effects:
        chosen["fixed_effects"] = list(specification.fixed_effects)
    for key in ("primary_outcome", "inference", "alpha"):
        if getattr(specification, key) is not None:
            chosen[key] = getattr(specification, key)
    return chosen
