"""Output folders written whole or not at all (``buzzpipe.output_folder``), outputs that never
replace an input, SIGTERM that leaves no temporaries, operating-system errors in one line."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from norwegian_layout import generate as norwegian_layout_survey

from buzzpipe import output_folder
from buzzpipe.cli import main
from buzzpipe.errors import InputError
from buzzpipe.output_folder import MANIFEST, write_folder

OLD = {"report.html": b"old report", "tables/a.csv": b"old a", "tables/gone.csv": b"old gone"}
NEW = {"report.html": b"new report", "tables/a.csv": b"new a", "figures/f.png": b"new f"}


def _state(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _expected(files: dict[str, bytes], folder: Path) -> dict[str, bytes]:
    manifest = (folder / MANIFEST).read_bytes()
    return {**files, MANIFEST: manifest}


class _Injected(Exception):
    pass


def _count_operations(out: Path, files: dict[str, bytes]) -> int:
    """The number of file operations a write of ``files`` into ``out`` takes (a dry run on a
    copy of its state)."""
    calls = []
    output_folder.FILE_OPERATION_HOOK = lambda name, path: calls.append(name)
    try:
        write_folder(out, files)
    finally:
        output_folder.FILE_OPERATION_HOOK = None
    return len(calls)


def _make(folder: Path, state: dict[str, bytes] | None) -> None:
    if state is None:
        return
    for name, data in state.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "over-earlier-report"])
@pytest.mark.parametrize("interruption", [_Injected, KeyboardInterrupt, OSError])
def test_interrupted_at_every_file_operation_leaves_old_or_new(tmp_path, earlier, interruption):
    """Whatever file operation fails (an OS error, Ctrl-C, SIGTERM unwinding), the folder is
    the earlier report or the new one, complete, and no temporary stays beside it."""
    base = tmp_path / "base"
    base.mkdir()
    if earlier:
        write_folder(base / "out", OLD)
    old_state = _state(base / "out")
    probe = tmp_path / "probe"
    probe.mkdir()
    _make(probe / "out", old_state)
    total = _count_operations(probe / "out", NEW)
    assert total >= len(NEW) + 3
    new_state = _state(probe / "out")
    assert set(new_state) == {*NEW, MANIFEST}
    for k in range(total + 1):
        case = tmp_path / f"case{k}"
        case.mkdir()
        _make(case / "out", old_state)
        seen = []

        def hook(name, path, k=k, seen=seen):
            seen.append(name)
            if len(seen) == k:
                raise interruption(f"injected at operation {k} ({name} {path})")

        output_folder.FILE_OPERATION_HOOK = hook
        try:
            write_folder(case / "out", NEW)
            finished = True
        except (interruption, InputError):
            finished = False
        finally:
            output_folder.FILE_OPERATION_HOOK = None
        after = _state(case / "out")
        if finished:
            assert k == 0 or k > total
            assert after == new_state
        else:
            assert after == old_state, f"operation {k}: neither old nor new"
        assert sorted(p.name for p in case.iterdir()) == (["out"] if after is not None else [])


def test_later_report_replaces_exactly_the_manifest_files(tmp_path):
    out = tmp_path / "out"
    write_folder(out, OLD)
    (out / "notes.txt").write_text("mine")  # a user's own file beside the report
    write_folder(out, NEW)
    state = _state(out)
    assert state["notes.txt"] == b"mine"
    assert "tables/gone.csv" not in state
    assert {k: v for k, v in state.items() if k not in ("notes.txt", MANIFEST)} == NEW


def test_non_empty_foreign_folder_is_refused_and_untouched(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="not empty and holds no earlier buzzpipe report"):
        write_folder(tmp_path, NEW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_symlinked_sub_folder_pointing_outside_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    write_folder(out, {"report.html": b"r"})
    (out / "tables").symlink_to(elsewhere)
    with pytest.raises(InputError, match="symbolic link"):
        write_folder(out, {"report.html": b"r2", "tables/a.csv": b"a"})
    assert list(elsewhere.iterdir()) == []
    assert (out / "report.html").read_bytes() == b"r"


def _survey(tmp_path) -> Path:
    path = tmp_path / "in.csv"
    norwegian_layout_survey(n_firms=300, seed=3).to_csv(path, index=False)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "{in}", "--out", "{in}"],
        ["describe", "{in}", "--csv", "{in}"],
        ["describe", "{in}", "--csv", "{link}"],
        ["describe", "{in}", "--csv", "{hard}"],
        ["analyze", "{in}", "--out", "{dir}"],
        ["report", "{dir}/results.json", "--out", "{dir}"],
    ],
    ids=["study", "describe", "symlink", "hardlink", "analyze-folder", "report-folder"],
)
def test_no_output_overwrites_an_input(tmp_path, capsys, argv):
    survey = _survey(tmp_path)
    (tmp_path / "link.csv").symlink_to(survey)
    os.link(survey, tmp_path / "hard.csv")
    (tmp_path / "results.json").write_text("{}")
    before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
    names = {"in": survey, "link": tmp_path / "link.csv", "hard": tmp_path / "hard.csv",
             "dir": tmp_path}  # fmt: skip
    code = main([part.format(**names) for part in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and ("overwrite the input" in err or "holds the input" in err)
    assert {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()} == before


def test_negative_seeds_are_refused(capsys):
    for argv in (["replicate", "--seed", "-1", "--out", "x"], ["synth", "--seed", "-3"]):
        assert main(argv) == 2
        assert "negative seed" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_operating_system_errors_are_one_line(tmp_path, capsys, where):
    survey = _survey(tmp_path)
    target = {"under-a-file": str(survey) + "/sub/out.csv", "proc": "/proc/buzzpipe/out.csv"}
    assert main(["describe", str(survey), "--csv", target[where]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("buzzpipe: error: ")


def test_deeply_nested_results_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_synth_refuses_a_survey_larger_than_the_disk(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["synth", "--seed", "1", "--firms", str(10**15), "--out", str(out)]) == 2
    assert "of disk" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sigterm_leaves_no_temporaries(tmp_path):
    """SIGTERM while synth writes: exit 143, no temporary file, and no half-written output
    (the output is absent, or complete when the signal came after the last rename)."""
    out = tmp_path / "s.csv"
    command = [sys.executable, "-m", "buzzpipe.cli", "synth", "--seed", "1", "--firms",
               "3000000", "--out", str(out), "--links", str(tmp_path / "l.csv")]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_replicate_refuses_a_survey_larger_than_memory(tmp_path, capsys):
    assert main(["replicate", "--firms", str(10**12), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "of memory" in err and "buzzpipe synth" in err
    assert list(tmp_path.iterdir()) == []


def test_output_folder_problems_are_refused_before_the_study_runs(tmp_path, capsys, monkeypatch):
    """A foreign folder or --out under a file is refused before any model is fitted."""
    import buzzpipe.study.battery

    def no_study(*args, **kwargs):
        raise AssertionError("the study ran")

    monkeypatch.setattr(buzzpipe.study.battery, "run_study", no_study)
    survey = _survey(tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    for out, why in ((foreign, "not empty"), (survey / "r", "under the file")):
        assert main(["analyze", str(survey), "--mapping", "norway", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err


def test_an_output_file_that_is_a_folder_or_under_a_file_is_refused_before_work(
    tmp_path, capsys, monkeypatch
):
    import buzzpipe.study.battery

    monkeypatch.setattr(buzzpipe.study.battery, "run_study", lambda *a, **k: 1 / 0)
    survey = _survey(tmp_path)
    for out, why in ((tmp_path, "--out is a folder"), (survey / "r.json", "under the file")):
        assert main(["study", str(survey), "--mapping", "norway", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err
