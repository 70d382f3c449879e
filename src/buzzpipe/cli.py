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


def add_few_clusters_mc(subparsers) -> None:
    """``buzzpipe few-clusters-mc``: the Monte Carlo of inference with few clusters (slow)."""
    parser = subparsers.add_parser(
        "few-clusters-mc",
        help="Monte Carlo: cluster-robust Wald vs wild score bootstrap with 5 to 100 clusters",
    )
    parser.add_argument("--replications", type=int, default=5000)
    parser.add_argument("--clusters", type=int, nargs="+", default=[5, 10, 30, 100])
    parser.add_argument("--beta", type=float, default=0.0, help="true slope")
    parser.add_argument("--null", type=float, default=0.0, help="tested value (= beta: size)")
    parser.add_argument("--balanced", action="store_true", help="equal region shares instead")
    parser.add_argument("--seed", type=int, default=20110601)
    parser.add_argument("--output", help="JSON file for the results (written atomically)")
    parser.set_defaults(func=run_few_clusters_mc)


def run_few_clusters_mc(args: argparse.Namespace) -> int:
    import json

    from buzzpipe.atomic_write import write_text
    from buzzpipe.errors import InputError
    from buzzpipe.estimate import few_clusters_monte_carlo

    bad = [g for g in args.clusters if g < 5 or g % 5]
    if bad or args.replications < 1:
        raise InputError(
            "--clusters must be multiples of 5 (each city-region split evenly), --replications > 0",
            value=bad or args.replications,
        )
    record = few_clusters_monte_carlo.run_study(
        args.replications,
        args.clusters,
        args.beta,
        args.seed,
        report=lambda s: print(s, flush=True),
        null_value=args.null,
        balanced=args.balanced,
    )
    if args.output:
        write_text(args.output, json.dumps(record, indent=2))
    return 0


# Commands register here: each add_<command> sets ``func`` to its run_<command>.
COMMANDS: list = [add_few_clusters_mc]


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
