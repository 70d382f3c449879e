"""The command line: argument parsing and error presentation only.

Each command is a pair of functions: ``add_<command>(subparsers)`` declares its arguments and
``run_<command>(args)`` calls into the stages. Errors become one line on stderr and exit status 2.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from buzzpipe import __version__, defaults
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


def add_simulate(subparsers) -> None:
    """``buzzpipe simulate``: run the agent-based model from a scenario file."""
    parser = subparsers.add_parser(
        "simulate",
        help="run the knowledge-diffusion model from a scenario (TOML)",
        description="Run the agent-based model of buzz and pipelines from a scenario file "
        "and write the simulated survey, city time series, experiment tables and figures.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("scenario", nargs="?", help="scenario file (TOML)")
    source.add_argument(
        "--builtin",
        metavar="NAME",
        help="a shipped scenario: norway, pipelines_by_city_size, openness",
    )
    parser.add_argument(
        "--out", default="out/simulate", help="output folder (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--replicates", type=int, help="override the number of replicates")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    parser.add_argument("--no-plots", action="store_true", help="write tables only")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes the replicates run on (the same files whatever their number; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the replicates on a Dask cluster (tcp://host:port; the same files as on one "
        "process), instead of --processes",
    )
    policy = parser.add_argument_group(
        "policy experiment",
        "the study's programmes as interventions in the scenario's world: K firms get one "
        "more kind of international (or regional) partner after a burn-in, every arm branched "
        "from the same state; writes policy.csv and effects.csv (paired by replicate)",
    )
    policy.add_argument(
        "--policy",
        metavar="TARGETING",
        help="run the policy experiment with this targeting: random, smallest, no_pipeline",
    )
    policy.add_argument("--treated", type=int, default=100, help="K (default %(default)s)")
    policy.add_argument(
        "--burn-in", type=int, default=5, help="survey windows before (default %(default)s)"
    )
    policy.add_argument(
        "--follow", type=int, default=2, help="survey windows after (default %(default)s)"
    )
    parser.set_defaults(func=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    from buzzpipe.simulate.scenario import builtin_scenario, read_scenario
    from buzzpipe.simulate.scenario_outputs import run_policy_scenario, run_scenario

    scenario = builtin_scenario(args.builtin) if args.builtin else read_scenario(args.scenario)
    scenario = scenario.with_overrides(seed=args.seed, replicates=args.replicates, steps=args.steps)
    if args.scheduler:
        from buzzpipe.estimate.dask_engine import connect

        args.processes = connect(args.scheduler)
    summary: list[str] = []
    if args.policy is not None:
        written = run_policy_scenario(
            scenario, args.out, targeting=args.policy, treated=args.treated,
            burn_in=args.burn_in, follow=args.follow, summary=summary.append,
            processes=args.processes,
        )  # fmt: skip
        print("\n".join([*map(str, written), *summary]))
        return 0
    written = run_scenario(
        scenario,
        args.out,
        plots=not args.no_plots,
        progress=lambda message: print(f"buzzpipe simulate: {message}", file=sys.stderr),
        summary=summary.append,
        processes=args.processes,
    )
    for path in written:
        print(path)
    for line in summary:
        print(line)
    return 0


COMMANDS.append(add_simulate)


def add_synth(subparsers: argparse._SubParsersAction) -> None:
    """``buzzpipe synth``: draw a calibrated synthetic survey, or calibrate a preset."""
    parser = subparsers.add_parser(
        "synth",
        help="draw a calibrated synthetic survey (norway2010, buzz, complement or a preset file)",
        description="Draw a synthetic firm survey from a preset to CSV or Parquet (by extension). "
        "Same preset, seed and N: same bytes.",
    )
    parser.add_argument(
        "--preset", default=defaults.PRESET, help="built-in name or preset TOML file (%(default)s)"
    )
    parser.add_argument("--seed", type=int, help="random seed (required to draw a survey)")
    parser.add_argument(
        "--out",
        help="firms file (.csv or .parquet), or a folder (no extension) for Parquet partitions "
        "FOLDER/firms/part-*.parquet; with --calibrate, a .toml",
    )
    parser.add_argument("--links", help="also write the firm-partner edge list here")
    parser.add_argument(
        "--edge-list",
        action="store_true",
        help="with a folder --out: an edge-list survey, links in FOLDER/links/part-*.parquet",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset value, e.g. --set outcomes.product.breadth_regional=0.2",
    )
    parser.add_argument("--firms", type=int, help="number of firms (default: the preset's)")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate the preset by simulation and write the calibrated preset to --out",
    )
    parser.add_argument("--seeds", type=int, help="with --calibrate: Monte Carlo seeds")
    parser.add_argument("--list", action="store_true", help="list the built-in presets")
    parser.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from buzzpipe.errors import InputError
    from buzzpipe.synth.preset import builtin_names, load_preset, parse_assignment

    if args.list:
        for name in builtin_names():
            print(f"{name}: {load_preset(name).description}")
        return 0
    overrides = dict(parse_assignment(text) for text in args.assignments)
    preset = load_preset(args.preset, overrides)
    if args.out is None:
        raise InputError("no output file", expected="--out FILE")
    out = Path(args.out)
    if args.calibrate:
        from buzzpipe.synth.calibrate import calibrate_to_file

        outcome = calibrate_to_file(
            args.preset,
            out,
            overrides=overrides,
            seeds=args.seeds,
            progress=lambda line: print(line, file=sys.stderr),
        )
        for key, value in outcome.record().items():
            print(f"{key} = {value}")
        return 0 if outcome.converged else 1
    from buzzpipe.synth.write import is_folder_output, write_partitioned, write_survey

    if is_folder_output(out):
        if args.links:
            raise InputError(
                "a folder --out holds the links too", expected="--edge-list instead of --links"
            )
        written = write_partitioned(
            preset, args.seed, out, edge_list=args.edge_list, firms=args.firms
        )
    elif args.edge_list:
        raise InputError("--edge-list needs a folder --out", value=str(out))
    else:
        written = write_survey(
            preset,
            args.seed,
            out,
            links_path=Path(args.links) if args.links else None,
            firms=args.firms,
        )
    links = f" and {written.links:,} links to {written.links_path}" if written.links_path else ""
    print(f"wrote {written.firms:,} firms to {written.firms_path}{links}", file=sys.stderr)
    return 0


COMMANDS.append(add_synth)


def _add_mapping_option(parser: argparse.ArgumentParser) -> None:
    """``--mapping`` and ``--delimiter``, declared alike by every command that reads a user's
    survey."""
    parser.add_argument(
        "--mapping", help="TOML mapping of your columns and codes (or: norway, cis)"
    )
    parser.add_argument(
        "--delimiter",
        help="CSV delimiter: , ; | or tab (default: the one that splits the header into the "
        "most columns; a semicolon-delimited file may have decimal commas)",
    )


def _add_replications_option(container: argparse._ActionsContainer) -> None:
    """``--replications`` of the counterfactual intervals, alike in ``study`` and the end-to-end
    commands (a parser or an argument group)."""
    container.add_argument(
        "--replications",
        type=int,
        default=defaults.BOOTSTRAP_REPLICATIONS,
        help="bootstrap replications of the counterfactual intervals (default %(default)s; "
        "0 turns the firm bootstrap off: no intervals)",
    )


def add_describe(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="the descriptive table of a survey, overall and by city-region",
        description="Firms by region and industry, collaboration at each scale and with each "
        "partner type, regimes and innovation rates, overall and by region. Firm files, and the "
        "links file of an edge-list survey, are read in batches, so memory stays bounded "
        "however many firms or links they hold.",
    )
    parser.add_argument("file", nargs="?", help="survey file (.csv, .parquet, .dta, .sav)")
    parser.add_argument("--links", help="links file of an edge-list survey (FILE holds firms)")
    _add_mapping_option(parser)
    parser.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    parser.add_argument(
        "--weighted",
        action="store_true",
        help="population shares and means weighted by the survey's weight column (as Stata's "
        "mean [pweight=weight]); counts stay counts of firms",
    )
    parser.add_argument(
        "--builtin",
        action="store_true",
        help="describe the built-in calibrated survey (the "
        f"{defaults.PRESET} preset, seed {defaults.REPLICATION_SEED})",
    )
    parser.set_defaults(func=run_describe)


def run_describe(args: argparse.Namespace) -> int:
    from buzzpipe.atomic_write import write_text
    from buzzpipe.errors import InputError
    from buzzpipe.survey.describe import describe, format_table
    from buzzpipe.survey.readers import describe_file

    if args.builtin == (args.file is not None):
        raise InputError("give either a survey FILE or --builtin", expected="exactly one")
    if args.builtin:
        if args.links or args.mapping or args.delimiter:
            raise InputError("--builtin takes no --links, --mapping or --delimiter")
        from buzzpipe.synth import synthesize

        survey = synthesize(defaults.PRESET, seed=defaults.REPLICATION_SEED)
        table = describe(survey, weighted=args.weighted)
        seed = defaults.REPLICATION_SEED
        print(f"built-in survey: synthetic, preset {defaults.PRESET}, seed {seed}")
    else:
        table = describe_file(
            args.file,
            links=args.links,
            mapping=args.mapping,
            weighted=args.weighted,
            delimiter=args.delimiter,
        )
    sys.stdout.write(format_table(table))
    if args.csv:
        from buzzpipe.csv_safety import spreadsheet_safe_frame

        write_text(args.csv, spreadsheet_safe_frame(table).to_csv(lineterminator="\n"))
    return 0


COMMANDS.append(add_describe)


def _add_engine_options(container: argparse._ActionsContainer) -> None:
    """``--engine`` and ``--scheduler``, alike in ``study`` and the end-to-end commands."""
    container.add_argument(
        "--engine",
        choices=("memory", "stream", "dask"),
        help="where the fits, margins and wild bootstraps run: in memory, as sums over row "
        "blocks (stream), or over partitions on a Dask cluster (dask; an edge-list survey's "
        "links are classified there too); same numbers (docs/scale.md). Default: the study "
        "file's engine, else memory",
    )
    container.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler, tcp://HOST:PORT (default: the study file's "
        "scheduler, else $DASK_SCHEDULER_ADDRESS, else a local cluster on this machine)",
    )


def _engine(args: argparse.Namespace) -> dict[str, str | None]:
    """``engine`` and ``scheduler`` of StudyOptions: the command line's, else the study file's,
    else memory."""
    from buzzpipe.study.specification import read_study_engine

    engine, scheduler = args.engine, args.scheduler
    if getattr(args, "study_file", None):
        from_file = read_study_engine(args.study_file)
        engine, scheduler = engine or from_file[0], scheduler or from_file[1]
    return {"engine": engine or "memory", "scheduler": scheduler}


def add_study(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run the clusters-versus-pipelines battery and write results.json",
        description="Main models, pipelines versus buzz, complementarity, spill-over, "
        "heterogeneity, policy counterfactuals and verdicts from the written rule table.",
    )
    parser.add_argument("file", help="survey file (.csv, .parquet, .dta, .sav)")
    parser.add_argument("--links", help="links file of an edge-list survey (FILE holds firms)")
    _add_mapping_option(parser)
    parser.add_argument("--out", required=True, help="where to write results.json")
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.STUDY_SEED,
        help="seed of every bootstrap (default %(default)s)",
    )
    _add_replications_option(parser)
    _add_specification_options(parser)
    _add_engine_options(parser)
    parser.set_defaults(func=run_study_command)


def run_study_command(args: argparse.Namespace) -> int:
    from buzzpipe.end_to_end import StudyOptions, study_file

    results = study_file(
        args.file,
        args.out,
        links=args.links,
        mapping=args.mapping,
        options=StudyOptions(
            seed=args.seed,
            replications=args.replications,
            specification=_specification(args),
            **_engine(args),
        ),
        delimiter=args.delimiter,
    )
    for verdict in results.verdicts:
        print(f"{verdict.finding}: {verdict.verdict}. {verdict.statement}")
    return 0


COMMANDS.append(add_study)


def _add_specification_options(parser: argparse.ArgumentParser) -> None:
    """The user's specification, for study, analyze and replicate."""
    group = parser.add_argument_group("specification (default: the published study's)")
    group.add_argument(
        "--outcomes",
        metavar="LIST",
        help="outcomes to model, comma-separated (product, process, new_to_market, "
        "product_novelty; default: those the survey has)",
    )
    group.add_argument(
        "--controls",
        metavar="TERMS",
        help="controls of every model with controls, a formula's right-hand side such as "
        '"np.log(employees) + industry" (a text column is a factor); a control the survey '
        "lacks is left out with a note",
    )
    group.add_argument(
        "--study-file",
        metavar="TOML",
        help="a study file (TOML) naming outcomes, controls, fixed_effects, primary_outcome, "
        "inference (headline, robust or cluster: which p the verdicts read), alpha and "
        "optionally engine and scheduler; --outcomes, --controls, --engine and --scheduler "
        "override it",
    )


def _specification(args: argparse.Namespace):
    from buzzpipe.study.specification import Specification, merged, read_study_file

    base = read_study_file(args.study_file) if args.study_file else Specification()
    return merged(base, args.outcomes, args.controls)


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    """How the models tables print (esttab's se/t/ci and eform), for replicate, analyze and
    report."""
    group = parser.add_argument_group("table options")
    group.add_argument(
        "--statistic",
        choices=("se", "t", "ci"),
        default="se",
        help="under each estimate: standard error in parentheses (se, the default), the z "
        "statistic b/se in parentheses (t) or the 95%% interval in brackets (ci)",
    )
    group.add_argument(
        "--eform",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="logit and ordered-logit columns as odds ratios exp(b), errors by the delta "
        "method and intervals exponentiated, as Stata's eform (the default); --no-eform prints "
        "coefficients. Probit and linear-probability columns are never exponentiated",
    )


def _table_style(args: argparse.Namespace):
    from buzzpipe.report.tables import TableStyle

    return TableStyle(statistic=args.statistic, eform=args.eform)


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    """The study's choices shared by ``replicate`` and ``analyze``."""
    group = parser.add_argument_group("study options")
    _add_replications_option(group)
    group.add_argument(
        "--wild-draws",
        type=int,
        default=defaults.WILD_BOOTSTRAP_DRAWS,
        help="draws of the region-clustered wild score bootstrap (sensitivity; default "
        "%(default)s)",
    )
    group.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="skip the sensitivity column (region-clustered errors, wild score bootstrap)",
    )
    group.add_argument(
        "--no-heterogeneity", action="store_true", help="skip the heterogeneity models"
    )
    group.add_argument(
        "--no-counterfactuals", action="store_true", help="skip the policy programmes"
    )
    group.add_argument(
        "--firms-treated",
        type=int,
        metavar="K",
        help="firms each programme reaches (with --allocation: in total or per region); "
        "giving K, --targeting or --allocation runs one pipeline and one cluster programme "
        "instead of the default set",
    )
    group.add_argument(
        "--targeting",
        choices=("random", "smallest", "no_pipeline"),
        help="which firms a programme reaches: random (exact expectation over all choices), "
        "the smallest, or firms without a pipeline",
    )
    group.add_argument(
        "--allocation", choices=("total", "per_region"), help="K in total or per region"
    )
    _add_engine_options(group)
    group.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar over the stages on stderr (auto: when stderr is a terminal)",
    )
    _add_table_options(parser)
    _add_specification_options(parser)


def _study_options(args: argparse.Namespace, seed: int):
    from buzzpipe.end_to_end import StudyOptions

    return StudyOptions(
        seed=seed,
        replications=args.replications,
        wild_draws=args.wild_draws,
        sensitivity=not args.no_sensitivity,
        heterogeneity=not args.no_heterogeneity,
        counterfactuals=not args.no_counterfactuals,
        firms_treated=args.firms_treated,
        targeting=args.targeting,
        allocation=args.allocation,
        **_engine(args),
        statistic=args.statistic,
        eform=args.eform,
        specification=_specification(args),
    )


def _print_run(summary) -> None:
    for verdict in summary.verdicts:
        print(f"{verdict['finding']}: {verdict['verdict'].replace('_', ' ')}")
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in summary.stages.items())
    print(f"stages: {timings}")
    print(f"wrote {len(summary.files)} files; report: {summary.out_dir / 'report.html'}")


_SHOW = {"auto": None, "always": True, "never": False}


def add_replicate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replicate",
        help="run the whole study on a calibrated synthetic survey and write the report",
        description="Draw a synthetic survey from a preset (norway2010 replicates the published "
        "Norwegian study; buzz and complement are contrasting worlds), run the "
        "clusters-versus-pipelines battery and write results.json, the HTML report, tables "
        "(CSV, LaTeX) and figures (PNG, SVG) to --out.",
    )
    parser.add_argument("--preset", default=defaults.PRESET, help="preset name or TOML file")
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.REPLICATION_SEED,
        help="seed of the survey and study (default %(default)s)",
    )
    parser.add_argument("--firms", type=int, help="number of firms (default: the preset's)")
    parser.add_argument("--out", default="buzzpipe-report", help="output folder")
    parser.add_argument(
        "--simulate",
        nargs="?",
        const="norway",
        metavar="SCENARIO",
        help="add the calibrated simulation beside the study: a built-in scenario or a TOML "
        "file (default when given alone: norway); calibration fit, the programmes as "
        "interventions beside the regression counterfactuals, lock-in, symmetric rules",
    )
    parser.add_argument(
        "--simulate-replicates",
        type=int,
        default=100,
        help="replicates of the simulation section (default %(default)s)",
    )
    parser.add_argument(
        "--simulate-processes",
        type=int,
        default=1,
        help="processes the simulation's replicates run on (same numbers; default %(default)s)",
    )
    parser.add_argument(
        "--simulate-scheduler",
        metavar="ADDRESS",
        help="run the simulation's replicates on a Dask cluster (tcp://host:port; same "
        "numbers), instead of --simulate-processes",
    )
    _add_study_options(parser)
    parser.set_defaults(func=run_replicate)


def run_replicate(args: argparse.Namespace) -> int:
    from buzzpipe.end_to_end import SimulationOptions, replicate

    simulation = (
        SimulationOptions(
            args.simulate,
            args.simulate_replicates,
            args.simulate_processes,
            args.simulate_scheduler,
        )  # fmt: skip
        if args.simulate
        else None
    )
    summary = replicate(
        args.out,
        preset=args.preset,
        seed=args.seed,
        firms=args.firms,
        options=_study_options(args, args.seed),
        show_progress=_SHOW[args.progress],
        simulation=simulation,
    )
    _print_run(summary)
    return 0


COMMANDS.append(add_replicate)


def add_analyze(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="run the whole study on your survey and write the report",
        description="Read a survey (.csv, .parquet, .dta, .sav; or firms plus --links for an "
        "edge-list survey), map it with --mapping, run the clusters-versus-pipelines battery "
        "and write results.json, the HTML report, tables and figures to --out.",
    )
    parser.add_argument("file", help="survey file, or the firms file of an edge-list survey")
    parser.add_argument("--links", help="links file of an edge-list survey")
    _add_mapping_option(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--seed", type=int, default=defaults.STUDY_SEED, help="seed of every bootstrap"
    )
    _add_study_options(parser)
    parser.set_defaults(func=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    from buzzpipe.end_to_end import analyze

    summary = analyze(
        args.file,
        args.out,
        links=args.links,
        mapping=args.mapping,
        options=_study_options(args, args.seed),
        show_progress=_SHOW[args.progress],
        delimiter=args.delimiter,
    )
    _print_run(summary)
    return 0


COMMANDS.append(add_analyze)


def add_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="re-render the report from a saved results.json alone",
        description="Read results.json (as written by replicate, analyze or study), check it "
        "and write the HTML report, tables (CSV, LaTeX, Word) and figures (PNG, SVG) to --out, "
        "without re-running the study. The same file gives the same bytes.",
    )
    parser.add_argument("results", help="a results.json file")
    parser.add_argument("--out", required=True, help="output folder")
    _add_table_options(parser)
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from buzzpipe.report.write_report import REPORT_FILE, report_from_file

    written = report_from_file(args.results, args.out, _table_style(args))
    print(f"wrote {len(written)} files; report: {Path(args.out) / REPORT_FILE}")
    return 0


COMMANDS.append(add_report)


# Per command: the options naming its input files, its output files and its output folders,
# checked before any work so that no output replaces an input.
_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "describe": (("file", "links", "mapping"), ("csv",), ()),
    "study": (("file", "links", "mapping", "study_file"), ("out",), ()),
    "analyze": (("file", "links", "mapping", "study_file"), (), ("out",)),
    "replicate": (("preset", "simulate", "study_file"), (), ("out",)),
    "report": (("results",), (), ("out",)),
    "synth": (("preset",), ("out", "links"), ()),
    "simulate": (("scenario",), (), ("out",)),
    "few-clusters-mc": ((), ("output",), ()),
}


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that would replace an input, and a negative seed."""
    from buzzpipe.errors import InputError
    from buzzpipe.output_folder import check_output_file, refuse_overwriting_inputs

    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise InputError("negative seed", value=seed, expected="--seed of at least 0")
    inputs, files, folders = _FILES.get(args.command, ((), (), ()))
    if args.command == "synth" and args.out and not args.calibrate:
        from pathlib import Path

        from buzzpipe.synth.write import is_folder_output

        if is_folder_output(Path(args.out)):  # Parquet partitions (write_partitioned)
            files, folders = ("links",), ("out",)

    def named(options: tuple[str, ...]) -> list[tuple[str, str | None]]:
        return [(f"--{name}", getattr(args, name, None)) for name in options]

    refuse_overwriting_inputs(
        [getattr(args, name, None) for name in inputs], files=named(files), folders=named(folders)
    )
    for option, path in named(files):
        if path is not None:
            check_output_file(path, option)


def _os_error_line(error: OSError) -> str:
    """An operating-system error as one line naming the path and what went wrong."""
    reason = error.strerror or type(error).__name__
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    where = " -> ".join(str(p) for p in paths)
    return f"{where}: {reason}" if where else f"{reason}: {error}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``buzzpipe`` console command."""
    from buzzpipe.interrupts import Terminated, installed

    parser = build_parser()
    args = parser.parse_args(argv)
    with installed():  # SIGTERM unwinds like Ctrl-C, so temporaries are removed
        return _run(args, Terminated)


def _run(args: argparse.Namespace, terminated: type[BaseException]) -> int:
    """Run the command; every error becomes one line and an exit status."""
    try:
        _check_paths(args)
        return int(args.func(args) or 0)
    except BuzzpipeError as error:
        print(f"buzzpipe: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path that cannot be read or written: the user can fix it
        print(f"buzzpipe: error: {_os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("buzzpipe: interrupted", file=sys.stderr)
        return 130
    except terminated:
        print("buzzpipe: terminated", file=sys.stderr)
        return 143
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
