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


def add_describe(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="the descriptive table of a survey, overall and by city-region",
        description="Firms by region and industry, collaboration at each scale and with each "
        "partner type, regimes and innovation rates, overall and by region. Parquet files are "
        "streamed in bounded memory.",
    )
    parser.add_argument("file", nargs="?", help="survey file (.csv, .parquet, .dta, .sav)")
    parser.add_argument("--links", help="links file of an edge-list survey (FILE holds firms)")
    parser.add_argument(
        "--mapping", help="TOML mapping of your columns and codes (or: norway, cis)"
    )
    parser.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    parser.add_argument(
        "--builtin",
        action="store_true",
        help="describe the small survey shipped with buzzpipe (a placeholder, not calibrated)",
    )
    parser.set_defaults(func=run_describe)


def run_describe(args: argparse.Namespace) -> int:
    from buzzpipe.atomic_write import write_text
    from buzzpipe.errors import InputError
    from buzzpipe.survey.builtin import builtin_survey, mapping_path
    from buzzpipe.survey.describe import describe_file, format_table

    if args.builtin == (args.file is not None):
        raise InputError("give either a survey FILE or --builtin", expected="exactly one")
    if args.builtin:
        if args.links or args.mapping:
            raise InputError("--builtin takes no --links or --mapping")
        table = builtin_survey().describe()
        print("built-in placeholder survey (not calibrated; see buzzpipe/data/placeholder.py)")
    else:
        mapping = mapping_path(args.mapping) if args.mapping else None
        table = describe_file(args.file, links=args.links, mapping=mapping)
    sys.stdout.write(format_table(table))
    if args.csv:
        write_text(args.csv, table.to_csv(lineterminator="\n"))
    return 0


COMMANDS.append(add_describe)


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
