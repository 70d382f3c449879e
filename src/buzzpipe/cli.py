"""The command line: argument parsing and error presentation only.

Each command is a pair of functions: ``add_<command>(subparsers)`` declares its arguments and
``run_<command>(args)`` calls into the stages. Errors become one line on stderr and exit status 2.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from buzzpipe import __version__
from buzzpipe.errors import BuzzpipeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buzzpipe",
        description="Local buzz versus global pipelines: firm surveys to findings.",
    )
    parser.add_argument("--version", action="version", version=f"buzzpipe {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in COMMANDS:
        add(subparsers)
    return parser


# Commands register here: each add_<command> sets ``func`` to its run_<command>.
COMMANDS: list = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``buzzpipe`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BuzzpipeError as error:
        print(f"buzzpipe: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("buzzpipe: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an unexpected failure still gets one line, unless debugging
        if os.environ.get("BUZZPIPE_DEBUG"):
            raise
        print(
            f"buzzpipe: internal error: {type(error).__name__}: {error} "
            "(set BUZZPIPE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
