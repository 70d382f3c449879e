"""Errors that reach the user as one actionable line (the command line exits with status 2)."""


class BuzzpipeError(Exception):
    """Base class: the message is the whole story, shown without a traceback."""


class InputError(BuzzpipeError):
    """Bad input: the message names the file, column or key, row(s), value and what was
    expected."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        key: str | None = None,
        rows: list[int] | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
        self.problem, self.key = problem, key
        self.file, self.column, self.rows, self.value, self.expected = (
            file,
            column,
            rows,
            value,
            expected,
        )
        parts = []
        if file is not None:
            parts.append(str(file))
        if column is not None:
            parts.append(f"column {column!r}")
        if key is not None:  # a key of a settings file (a study file's ``alpha``)
            parts.append(f"key {key!r}")
        if rows:
            shown = ", ".join(str(r) for r in rows[:5])
            more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            parts.append(f"row{'s' if len(rows) > 1 else ''} {shown}{more}")
        where = ": ".join([", ".join(parts)]) if parts else ""
        message = f"{where}: {problem}" if where else problem
        if value is not None:
            message += f" (got {value!r})"
        if expected is not None:
            message += f"; expected {expected}"
        super().__init__(message)


class EstimationError(BuzzpipeError):
    """A model cannot be estimated as asked (non-convergence, no variation, too few clusters).

    ``reason`` says why in one word, the value of ``results.vocabulary.NotAssessedReason`` the
    study records for the quantities it could not produce; the subclasses below set it.
    """

    reason = "not_estimable"


class SeparationError(EstimationError):
    """Some combination of regressors predicts the outcome perfectly: the estimate does not
    exist (Stata: "predicts data perfectly")."""

    reason = "separation"


class NonConvergenceError(EstimationError):
    """The maximisation stopped without converging where no separation explains it: the
    numbers where it stopped are not an estimate."""

    reason = "non_convergence"


class DroppedTermError(EstimationError):
    """A term a quantity needs was dropped from the fit (collinear with others, constant, or
    perfectly predicting)."""

    reason = "collinearity"


class NoVariationError(EstimationError):
    """The outcome does not vary in the estimation sample."""

    reason = "no_variation"


class TooFewError(EstimationError):
    """Too few observations (or none) for the parameters of the model."""

    reason = "no_data"
