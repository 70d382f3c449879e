"""A corpus of bad and awkward inputs, and a run of the command line over all of them.

    .venv/bin/python scripts/bad_inputs.py generate /work/badinputs     # write the corpus
    .venv/bin/python scripts/bad_inputs.py run /work/badinputs          # run every case

The corpus lives outside the repository. Each case is a command line over its files; the run
checks, for every case: no traceback, no exit 3 (internal error) and no death by a signal, no
input file changed (SHA-256 before and after), no temporary left beside an output, no
half-written output folder (absent, the earlier one, or complete with every file of its
manifest), and a refusal that is one line naming what to fix. The summary is printed and
written to DIR/results.json; ``--only NAME`` reruns some cases.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FAST = ["--no-sensitivity", "--no-heterogeneity", "--no-counterfactuals", "--progress", "never"]
REPOSITORY = Path(__file__).resolve().parent.parent
TEMPORARY_MARKS = (".tmp", ".buzzpipe-new-", ".buzzpipe-old-", ".old")


@dataclass
class Case:
    name: str
    kind: str  # the class of bad input
    argv: list[str]  # {d}: the corpus folder, {o}: this case's output folder
    expect: str = "refused"  # refused (exit 2), ok (exit 0) or either
    prepare_output: str | None = None  # "report" or "foreign": the output folder holds this
    note: str = ""


@dataclass
class Outcome:
    name: str
    kind: str
    code: int
    seconds: float
    problems: list[str] = field(default_factory=list)
    message: str = ""


# --------------------------------------------------------------------------- the corpus files


def _base(seed: int = 7, firms: int = 600) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A canonical firm survey with answers, and an edge-list survey (firms, links)."""
    from buzzpipe.synth import generate
    from buzzpipe.synth.generate import edge_list_firms

    firms_frame, links = generate("norway2010", seed, firms=firms)
    return firms_frame, edge_list_firms(firms_frame, "NO"), links


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain text, as a file read back would have them."""
    return frame.astype(
        {c: object for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


def generate(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    survey, edge_firms, links = (_plain(f) for f in _base())
    d = "{d}"
    cases: list[Case] = []

    def csv(name: str, frame: pd.DataFrame, **options) -> str:
        frame.to_csv(folder / name, index=False, **options)
        return f"{d}/{name}"

    def text(name: str, content: str | bytes) -> str:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return f"{d}/{name}"

    def add(name, kind, argv, expect="refused", **kw) -> None:
        cases.append(Case(name, kind, [str(a) for a in argv], expect, **kw))

    good = csv("good.csv", survey)
    firms_csv = csv("firms.csv", edge_firms)
    links_csv = csv("links.csv", links)
    add("good-describe", "baseline", ["describe", good], "ok")
    add("good-analyze", "baseline", ["analyze", good, "--out", "{o}", *FAST], "ok")
    add("good-edge-list", "baseline", ["analyze", firms_csv, "--links", links_csv,
                                       "--out", "{o}", *FAST], "ok")  # fmt: skip

    # 1. outputs that would replace an input
    (folder / "link-to-good.csv").symlink_to("good.csv")
    os.link(folder / "good.csv", folder / "hardlink-good.csv")
    for name, argv in {
        "study-out-is-input": ["study", good, "--out", good],
        "describe-csv-is-input": ["describe", good, "--csv", good],
        "describe-csv-symlink-to-input": ["describe", good, "--csv", f"{d}/link-to-good.csv"],
        "describe-csv-hardlink-to-input": ["describe", good, "--csv", f"{d}/hardlink-good.csv"],
        "study-out-is-links": ["study", firms_csv, "--links", links_csv, "--out", links_csv],
        "study-out-is-mapping": ["study", good, "--mapping", text("m.toml", "[survey]\n"),
                                 "--out", f"{d}/m.toml"],
        "analyze-out-holds-input": ["analyze", good, "--out", d, *FAST],
        "synth-out-is-preset": ["synth", "--preset", text("p.toml", _preset_text()),
                                "--seed", "1", "--out", f"{d}/p.toml"],
        "synth-links-is-firms": ["synth", "--seed", "1", "--out", "{o}/s.csv",
                                 "--links", "{o}/s.csv"],
        "simulate-out-holds-scenario": ["simulate", text("sc.toml", _scenario_text()),
                                        "--out", d, "--no-plots"],
    }.items():  # fmt: skip
        add(name, "output replaces input", argv)

    # 2. output folders: foreign, under a file, a file, /proc, symlink inside pointing outside
    add("analyze-into-foreign-folder", "output folder", ["analyze", good, "--out", "{o}", *FAST],
        prepare_output="foreign")  # fmt: skip
    add("analyze-over-earlier-report", "output folder", ["analyze", good, "--out", "{o}", *FAST],
        "ok", prepare_output="report")  # fmt: skip
    add("analyze-symlinked-subfolder", "output folder", ["analyze", good, "--out", "{o}", *FAST],
        prepare_output="report-with-outside-link")  # fmt: skip
    add("analyze-out-under-a-file", "os error", ["analyze", good, "--out", f"{good}/r", *FAST])
    add("analyze-out-is-a-file", "os error", ["analyze", good, "--out", "{o}/f", *FAST],
        prepare_output="a-file-f")  # fmt: skip
    add("describe-csv-under-proc", "os error", ["describe", good, "--csv", "/proc/bp/x.csv"])
    # a results file of its own (the golden format-1 file, converted on reading): the case does
    # not lean on another case's output, and its path exists (a path through the case's own
    # not-yet-made output folder, "{o}/../..", does not resolve)
    earlier = folder / "earlier-results.json"
    shutil.copyfile(REPOSITORY / "tests/results/golden/norway2010/results_format1.json", earlier)
    add("report-out-under-proc", "os error", ["report", f"{d}/{earlier.name}", "--out", "/proc/bp"])
    add("study-out-under-a-file", "os error", ["study", good, "--out", f"{good}/x.json"])
    add("synth-out-under-proc", "os error", ["synth", "--seed", "1", "--out", "/proc/bp/s.csv"])
    add("simulate-out-is-a-file", "os error", ["simulate", "--builtin", "norway", "--out",
                                               good, "--steps", "2", "--no-plots"])  # fmt: skip
    add("study-out-is-a-folder", "os error", ["study", good, "--out", d])
    add("describe-file-is-a-folder", "os error", ["describe", f"{d}/sub.csv"])
    (folder / "sub.csv").mkdir(exist_ok=True)
    add("describe-missing-file", "os error", ["describe", f"{d}/nope.csv"])
    add("describe-unreadable-proc", "os error", ["describe", "/proc/self/mem.csv"])

    # 3. numbers and resource limits
    for name, argv in {
        "replicate-negative-seed": ["replicate", "--seed", "-1", "--out", "{o}", *FAST],
        "analyze-negative-seed": ["analyze", good, "--seed", "-5", "--out", "{o}", *FAST],
        "study-negative-seed": ["study", good, "--seed", "-5", "--out", "{o}/r.json"],
        "synth-negative-seed": ["synth", "--seed", "-2", "--out", "{o}/s.csv"],
        "simulate-negative-seed": ["simulate", "--builtin", "norway", "--seed", "-1",
                                   "--out", "{o}", "--steps", "2"],
        "replicate-10e12-firms": ["replicate", "--firms", "1000000000000", "--out", "{o}"],
        "replicate-few-firms": ["replicate", "--firms", "3", "--out", "{o}"],
        "synth-10e15-firms": ["synth", "--seed", "1", "--firms", str(10**15), "--out", "{o}/s.csv"],
        "synth-10e15-firms-parquet": ["synth", "--seed", "1", "--firms", str(10**15),
                                      "--out", "{o}/s.parquet", "--links", "{o}/l.parquet"],
        "synth-zero-firms": ["synth", "--seed", "1", "--firms", "0", "--out", "{o}/s.csv"],
        "analyze-few-wild-draws": ["analyze", good, "--wild-draws", "5", "--out", "{o}"],
        "analyze-firms-treated-zero": ["analyze", good, "--firms-treated", "0", "--out", "{o}"],
        "simulate-negative-steps": ["simulate", "--builtin", "norway", "--steps", "-3",
                                    "--out", "{o}"],
        "simulate-zero-replicates": ["simulate", "--builtin", "norway", "--replicates", "0",
                                     "--out", "{o}"],
        "simulate-unknown-builtin": ["simulate", "--builtin", "atlantis", "--out", "{o}"],
        "few-clusters-bad-clusters": ["few-clusters-mc", "--clusters", "7", "--replications", "1"],
        "synth-no-seed": ["synth", "--out", "{o}/s.csv"],
        "synth-unknown-extension": ["synth", "--seed", "1", "--out", "{o}/s.xlsx"],
        "synth-bad-set": ["synth", "--seed", "1", "--set", "nonsense", "--out", "{o}/s.csv"],
        "synth-set-unknown-key": ["synth", "--seed", "1", "--set", "a.b=1", "--out", "{o}/s.csv"],
        "replicate-unknown-preset": ["replicate", "--preset", "atlantis", "--out", "{o}"],
    }.items():  # fmt: skip
        add(name, "numbers and limits", argv)
    # --replications 0 turns the firm bootstrap off (the chunked engines' documented switch)
    add("analyze-zero-replications", "numbers and limits",
        ["analyze", good, "--replications", "0", "--out", "{o}", *FAST], "ok")  # fmt: skip
    add("analyze-firms-treated-above-firms", "numbers and limits",
        ["analyze", good, "--firms-treated", "100000", "--out", "{o}", "--no-sensitivity",
         "--no-heterogeneity", "--replications", "9", "--progress", "never"], "either")  # fmt: skip

    # 4. files that cannot be read
    for name, content in {
        "empty.csv": b"",
        "header-only.csv": ",".join(survey.columns).encode() + b"\n",
        "garbage.csv": bytes(range(256)) * 40,
        "garbage.parquet": b"PAR1" + b"\x00" * 100,
        "truncated.parquet": None,
        "garbage.dta": b"\x75\x02\x01" + b"\x00" * 64,
        "garbage.sav": b"$FL2" + b"\x00" * 64,
        "text.xlsx": b"not a spreadsheet",
        "only-newlines.csv": b"\n\n\n\n",
        "one-column.csv": b"firm_id\n1\n2\n3\n",
        "nul-bytes.csv": b"firm_id,region\x00\n1,Oslo\x00\n",
        "unbalanced-quotes.csv": ",".join(survey.columns).encode() + b'\n1,"Oslo\n',
    }.items():  # fmt: skip
        if name == "truncated.parquet":
            survey.to_parquet(folder / name)
            data = (folder / name).read_bytes()
            (folder / name).write_bytes(data[: len(data) // 2])
        else:
            text(name, content)
        add(f"describe-{name}", "unreadable file", ["describe", f"{d}/{name}"])
        add(f"analyze-{name}", "unreadable file", ["analyze", f"{d}/{name}", "--out", "{o}",
                                                  *FAST])  # fmt: skip
    add("describe-no-extension", "unreadable file", ["describe", text("survey", "a,b\n1,2\n")])
    add("describe-txt", "unreadable file", ["describe", text("survey.txt", "a,b\n1,2\n")])

    # 5. the files people have (read correctly, or refused with a hint)
    variants = {
        "bom.csv": dict(encoding="utf-8-sig"),
        "crlf.csv": dict(lineterminator="\r\n"),
        "latin1.csv": dict(encoding="latin-1"),
        "semicolon-decimal-comma.csv": dict(sep=";", decimal=","),
        "semicolon.csv": dict(sep=";"),
        "tab.tsv.csv": dict(sep="\t"),
        "quoted-all.csv": dict(quoting=1),
    }
    latin = survey.copy()
    latin["region"] = latin["region"].replace({"Trondheim": "Tromsø"})
    for name, options in variants.items():
        frame = latin if name == "latin1.csv" else survey
        csv(name, frame, **options)
        add(f"analyze-{name}", "files people have", ["analyze", f"{d}/{name}", "--out", "{o}",
                                                    *FAST], "either")  # fmt: skip
    for name, opener in {"survey.csv.gz": gzip.open, "survey.csv.bz2": bz2.open}.items():
        with opener(folder / name, "wb") as handle:
            handle.write(survey.to_csv(index=False).encode())
        add(f"analyze-{name}", "files people have", ["analyze", f"{d}/{name}", "--out", "{o}",
                                                    *FAST], "either")  # fmt: skip
    with zipfile.ZipFile(folder / "survey.csv.zip", "w") as archive:
        archive.writestr("survey.csv", survey.to_csv(index=False))
    add("analyze-survey.csv.zip", "files people have",
        ["analyze", f"{d}/survey.csv.zip", "--out", "{o}", *FAST], "either")  # fmt: skip
    try:
        survey.to_excel(folder / "survey.xlsx", index=False)
        add("analyze-survey.xlsx", "files people have",
            ["analyze", f"{d}/survey.xlsx", "--out", "{o}", *FAST], "either")  # fmt: skip
    except ImportError:
        pass
    survey.to_parquet(folder / "survey.parquet")
    add("analyze-parquet", "files people have", ["analyze", f"{d}/survey.parquet", "--out",
                                                 "{o}", *FAST], "ok")  # fmt: skip
    percent = survey.assign(foreign_share=survey["foreign_share"] * 100)
    add("analyze-foreign-share-percent", "bad values",
        ["analyze", csv("percent.csv", percent), "--out", "{o}", *FAST])  # fmt: skip
    no_foreign = survey.drop(columns="foreign_share")
    add(
        "analyze-no-foreign-share",
        "files people have",
        ["analyze", csv("no-foreign.csv", no_foreign), "--out", "{o}", *FAST],
        "either",
    )
    padded = survey.assign(industry=survey["industry"].map(lambda s: f" {s} "))
    add("analyze-padded-names", "files people have",
        ["analyze", csv("padded.csv", padded), "--out", "{o}", *FAST], "either")  # fmt: skip
    cased = survey.copy()
    cased.loc[cased.index[::7], "region"] = cased["region"].str.lower()
    add("analyze-case-variants", "files people have",
        ["analyze", csv("cased.csv", cased), "--out", "{o}", *FAST], "ok")  # fmt: skip

    # 6. bad values
    def broken(name: str, change) -> None:
        frame = survey.copy()
        frame = change(frame) if callable(change) else frame
        path = csv(name, frame)
        add(f"analyze-{name}", "bad values", ["analyze", path, "--out", "{o}", *FAST])

    broken("no-firm-id.csv", lambda f: f.drop(columns="firm_id"))
    broken("duplicate-ids.csv", lambda f: f.assign(firm_id=1))
    broken("text-employees.csv", lambda f: f.assign(employees="many"))
    broken("negative-employees.csv", lambda f: f.assign(employees=-f["employees"]))
    broken("zero-employees.csv", lambda f: f.assign(employees=0))
    broken("share-above-one.csv", lambda f: f.assign(foreign_share=1.7))
    broken("collab-code-7.csv", lambda f: f.assign(collab_regional_suppliers=7))
    broken("product-text.csv", lambda f: f.assign(product="yes"))
    broken("no-product.csv", lambda f: f.drop(columns="product"))
    broken("new-to-market-without-product.csv",
           lambda f: f.assign(product=0, new_to_market=1))  # fmt: skip
    broken("inf-employees.csv", lambda f: f.assign(employees=np.inf))
    broken("no-region.csv", lambda f: f.drop(columns="region"))
    broken("no-collaboration.csv", lambda f: f.drop(columns=[c for c in f if "collab" in c]))
    broken("three-firms.csv", lambda f: f.head(3))
    broken("empty-region-names.csv", lambda f: f.assign(region=""))

    # a bad value in the second of three Parquet files (the firms read and checked on the Dask
    # workers under --engine dask, partition by partition): refused in the memory engine's line
    def parts(name: str, change) -> None:
        frame = change(survey.copy())
        (folder / name).mkdir(exist_ok=True)
        for number, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
            frame.iloc[rows].to_parquet(folder / name / f"part-{number}.parquet", index=False)
        for engine in ("memory", "dask"):
            add(f"analyze-{name}-{engine}", "bad values", ["analyze", f"{d}/{name}", "--out",
                "{o}", "--engine", engine, "--replications", "0", *FAST])  # fmt: skip

    second = survey.index[len(survey) // 2]
    parts("parts-negative-employees", lambda f: f.assign(
        employees=f["employees"].where(f.index != second, -4.0)))  # fmt: skip
    parts("parts-duplicate-id", lambda f: f.assign(
        firm_id=f["firm_id"].where(f.index != second, f["firm_id"].iloc[0])))  # fmt: skip
    parts("parts-collab-code-7", lambda f: f.assign(collab_regional_suppliers=f[
        "collab_regional_suppliers"].where(f.index < second, 7)))  # fmt: skip
    text("duplicate-columns.csv", "firm_id,firm_id,region\n1,2,Oslo\n")
    add("analyze-duplicate-columns", "bad values", ["analyze", f"{d}/duplicate-columns.csv",
                                                   "--out", "{o}", *FAST])  # fmt: skip

    # 7. models that cannot be estimated (the study goes on, or says which model)
    def awkward(name: str, change) -> None:
        path = csv(name, change(survey.copy()))
        add(f"analyze-{name}", "model that cannot be estimated",
            ["analyze", path, "--out", "{o}", *FAST], "either")  # fmt: skip

    awkward("nan-product.csv", lambda f: f.assign(product=np.nan))  # product not assessed
    awkward("no-variation-product.csv", lambda f: f.assign(product=0, new_to_market=0))
    awkward("all-product.csv", lambda f: f.assign(product=1))
    awkward("one-region.csv", lambda f: f.assign(region="Oslo"))
    awkward("one-industry.csv", lambda f: f.assign(industry="retail"))
    awkward("national-equals-regional.csv", lambda f: f.assign(
        **{c.replace("regional", "national"): f[c] for c in f if c.startswith("collab_regional")}
    ))  # fmt: skip

    def reference_fails(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[f["region"] == "Bergen", ["product", "new_to_market"]] = 0
        return f

    def other_fails(f: pd.DataFrame) -> pd.DataFrame:
        f.loc[f["region"] == "Trondheim", ["product", "new_to_market"]] = 0
        return f

    awkward("reference-region-fails.csv", reference_fails)
    awkward("other-region-fails.csv", other_fails)
    awkward("no-international.csv", lambda f: f.assign(
        **{c: 0 for c in f if c.startswith("collab_international")}))  # fmt: skip
    awkward("all-dont-know.csv", lambda f: f.assign(**{c: np.nan for c in f if "collab" in c}))
    awkward("separation-breadth.csv", lambda f: f.assign(
        product=(f[[c for c in f if c.startswith("collab_national")]].sum(axis=1) > 0).astype(int),
        new_to_market=0))  # fmt: skip
    awkward("sixty-firms.csv", lambda f: f.head(60))

    # 8. edge lists
    def edge(name: str, change_links, expect="either", firms_path=None) -> None:
        path = csv(name, change_links(links.copy()))
        add(f"analyze-links-{name}", "edge list",
            ["analyze", firms_path or firms_csv, "--links", path, "--out", "{o}", *FAST],
            expect)  # fmt: skip

    edge("no-links.csv", lambda lk: lk.head(0))
    edge("blank-partner-country.csv", lambda lk: lk.assign(partner_country=""))
    edge("many-links-per-firm.csv", lambda lk: pd.concat([lk] * 4, ignore_index=True))
    edge("unknown-firms.csv", lambda lk: lk.assign(firm_id=lk["firm_id"] + 10**6), "refused")
    edge("lowercase-partner-region.csv",
         lambda lk: lk.assign(partner_region=lk["partner_region"].str.lower()), "ok")  # fmt: skip
    edge("missing-partner-type.csv", lambda lk: lk.drop(columns="partner_type"), "refused")
    edge("unknown-partner-type.csv", lambda lk: lk.assign(partner_type="friends"), "refused")
    edge("all-foreign.csv", lambda lk: lk.assign(partner_country="SE"))
    add("analyze-links-is-firms", "edge list", ["analyze", firms_csv, "--links", firms_csv,
                                               "--out", "{o}", *FAST])  # fmt: skip

    # 9. mappings
    for name, content in {
        "not-toml.toml": "this is [not toml",
        "unknown-column.toml": '[columns]\nfirm_id = "nope"\n',
        "unknown-codes.toml": '[columns]\nproduct = { column = "product", codes = "nope" }\n',
        "bad-scale.toml": '[survey]\nscales = ["galactic"]\n',
        "empty.toml": "",
        "binary.toml": "\x00\x01\x02",
    }.items():
        path = text(name, content)
        add(f"analyze-mapping-{name}", "mapping", ["analyze", good, "--mapping", path,
                                                  "--out", "{o}", *FAST], "either")  # fmt: skip
    add("analyze-mapping-missing", "mapping", ["analyze", good, "--mapping", f"{d}/none.toml",
                                              "--out", "{o}", *FAST])  # fmt: skip
    add("analyze-mapping-folder", "mapping", ["analyze", good, "--mapping", d, "--out", "{o}",
                                             *FAST])  # fmt: skip

    # 10. results files
    for name, content in {
        "results-empty.json": "",
        "results-not-json.json": "{not json",
        "results-nested.json": "[" * 50_000 + "]" * 50_000,
        "results-array.json": "[]",
        "results-wrong-version.json": '{"format_version": 99}',
        "results-latin1.json": b"\xff\xfe{}",
    }.items():  # fmt: skip
        path = text(name, content)
        add(f"report-{name}", "results file", ["report", path, "--out", "{o}"])

    # 11. presets and scenarios
    for name, content in {
        "preset-bad.toml": "[survey\nfirms = 3",
        "preset-unknown-key.toml": _preset_text() + "\n[nonsense]\nx = 1\n",
        "scenario-bad.toml": "[run\n",
        "scenario-negative-city.toml": _scenario_text().replace("A = 60", "A = -60"),
    }.items():
        path = text(name, content)
        if name.startswith("preset"):
            add(f"synth-{name}", "preset or scenario",
                ["synth", "--preset", path, "--seed", "1", "--out", "{o}/s.csv"])  # fmt: skip
        else:
            add(f"simulate-{name}", "preset or scenario", ["simulate", path, "--out", "{o}"])

    # 12. names a spreadsheet would run, and unusual names
    formula = survey.copy()
    formula["region"] = formula["region"].replace({"Oslo": '=HYPERLINK("http://x","a")'})
    add("analyze-formula-region", "names", ["analyze", csv("formula.csv", formula), "--out",
                                            "{o}", *FAST], "ok")  # fmt: skip
    add("describe-formula-region", "names", ["describe", f"{d}/formula.csv", "--csv",
                                             "{o}/d.csv"], "ok")  # fmt: skip
    odd = survey.copy()
    odd["industry"] = odd["industry"].replace({"retail": "<script>alert(1)</script> & 50%_$"})
    add("analyze-html-latex-names", "names", ["analyze", csv("odd.csv", odd), "--out", "{o}",
                                              *FAST], "ok")  # fmt: skip
    (folder / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=1))
    return cases


def _preset_text() -> str:
    from buzzpipe.synth.preset import load_preset

    return Path(load_preset("norway2010").path).read_text(encoding="utf-8")


def _scenario_text() -> str:
    return (
        '[run]\nexperiment = "single"\nsteps = 3\nseed = 1\nreplicates = 1\n\n'
        "[cities]\nA = 60\nB = 40\n"
    )


# --------------------------------------------------------------------------- the run


def _hashes(folder: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != "results.json":
            digests[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _prepare(out: Path, how: str | None, runs: Path) -> dict[str, str] | None:
    if how is None:
        return None
    out.mkdir(parents=True)
    if how == "foreign":
        (out / "thesis.tex").write_text("a user's own file")
    elif how == "a-file-f":
        (out / "f").write_text("a file")
    elif how.startswith("report"):
        earlier = runs / "good-analyze" / "out"
        for path in earlier.rglob("*"):
            if path.is_file():
                (out / path.relative_to(earlier)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out / path.relative_to(earlier))
        if how == "report-with-outside-link":
            outside = runs / "outside-target"
            outside.mkdir(exist_ok=True)
            shutil.rmtree(out / "figures", ignore_errors=True)
            (out / "figures").symlink_to(outside)
    return _hashes(out)


def _check_output(out: Path, before: dict[str, str] | None, code: int) -> list[str]:
    problems = []
    for path in out.parent.rglob("*") if out.parent.exists() else []:
        if any(mark in path.name for mark in TEMPORARY_MARKS) and path.name.startswith("."):
            problems.append(f"temporary left: {path}")
    if not out.exists():
        return problems
    manifest = out / "buzzpipe-manifest.json"
    if code != 0 and before is not None:  # a refused run over a prepared folder: untouched?
        if _hashes(out) != before:
            problems.append("a refused run changed the output folder")
        return problems
    if manifest.exists():
        files = json.loads(manifest.read_text())["files"]
        missing = [name for name in files if not (out / name).exists()]
        if missing:
            problems.append(f"half-written: {len(missing)} files of the manifest missing")
    if code != 0 and before is None and any(out.iterdir()) and manifest.exists():
        problems.append("a refused run left a new output")
    return problems


def run(folder: Path, buzzpipe: str, only: list[str] | None, timeout: int) -> list[Outcome]:
    cases = [Case(**record) for record in json.loads((folder / "cases.json").read_text())]
    if only:
        cases = [c for c in cases if any(word in c.name for word in only)]
    runs = folder.parent / (folder.name + "-runs")
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    inputs_before = _hashes(folder)
    outcomes = []
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    environment.pop("BUZZPIPE_DEBUG", None)
    for case in cases:
        case_runs = runs / case.name
        case_runs.mkdir()
        out = case_runs / "out"
        before = _prepare(out, case.prepare_output, runs)
        argv = [a.format(d=folder, o=out) for a in case.argv]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [buzzpipe, *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=environment,
                stdin=subprocess.DEVNULL,
            )
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired:
            code, stdout, stderr = -1, "", "timed out"
        seconds = time.perf_counter() - started
        outcome = Outcome(case.name, case.kind, code, round(seconds, 1))
        errors = [line for line in stderr.splitlines() if line.startswith("buzzpipe: error")]
        outcome.message = (errors or stderr.strip().splitlines()[-1:] or [""])[0][:400]
        if "Traceback" in stdout + stderr:
            outcome.problems.append("traceback")
        if code == 3 or "internal error" in stderr:
            outcome.problems.append("internal error (exit 3)")
        if code < 0 or code > 3 and code not in (130, 143):
            outcome.problems.append(f"killed or timed out (exit {code})")
        if case.expect == "ok" and code != 0:
            outcome.problems.append(f"expected success, got exit {code}")
        if case.expect == "refused" and code != 2:
            outcome.problems.append(f"expected a refusal (exit 2), got exit {code}")
        if code == 2 and len(errors) != 1:
            outcome.problems.append(f"refusal is {len(errors)} error lines")
        if case.name == "analyze-out-holds-input" or case.prepare_output != "a-file-f":
            outcome.problems.extend(_check_output(out, before, code))
        outcomes.append(outcome)
        status = "ok  " if not outcome.problems else "FAIL"
        print(f"{status} {case.name:45s} exit {code} {seconds:6.1f}s  {outcome.message[:150]}",
              flush=True)  # fmt: skip
        for problem in outcome.problems:
            print(f"       {problem}", flush=True)
    changed = [name for name, digest in _hashes(folder).items()
               if inputs_before.get(name) != digest]  # fmt: skip
    changed += [f"{name} (removed)" for name in inputs_before if not (folder / name).exists()]
    summary = {
        "cases": len(outcomes),
        "passed": sum(not o.problems for o in outcomes),
        "exit_codes": {
            str(c): sum(o.code == c for o in outcomes) for c in sorted({o.code for o in outcomes})
        },  # fmt: skip
        "tracebacks": sum("traceback" in o.problems for o in outcomes),
        "internal_errors": sum(any("exit 3" in p for p in o.problems) for o in outcomes),
        "inputs_changed": changed,
        "failures": {o.name: o.problems for o in outcomes if o.problems},
        "outcomes": [asdict(o) for o in outcomes],
    }
    (runs / "results.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "outcomes"}, indent=1))
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("generate", "run"))
    parser.add_argument("folder", type=Path, help="the corpus folder (outside the repository)")
    parser.add_argument("--buzzpipe", default=str(Path(sys.executable).parent / "buzzpipe"))
    parser.add_argument("--only", nargs="*", help="run the cases whose names contain a word")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    folder = args.folder.resolve()
    if args.action == "generate":
        if folder.exists():
            shutil.rmtree(folder)
        cases = generate(folder)
        print(f"{len(cases)} cases in {folder}")
        return 0
    outcomes = run(folder, args.buzzpipe, args.only, args.timeout)
    return 0 if all(not o.problems for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
