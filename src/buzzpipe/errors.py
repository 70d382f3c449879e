"""Errors that reach the user as one actionable line (the command line exits with status 2)."""


class BuzzpipeError(Exception):
    """Base class: the message is the whole story, shown without a traceback."""


class InputError(BuzzpipeError):
    """Bad input: the message names the file, column, row(s), value and what was expected."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        column: str | None = None,
        rows: list[int] | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
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
    """A model cannot be estimated as asked (non-convergence, no variation, too few clusters)."""
