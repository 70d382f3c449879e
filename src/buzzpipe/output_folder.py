"""Output folders written whole or not at all, and outputs that never replace an input.

A folder output (a report, a simulation's files) is built in a temporary sibling folder; only
when every file is complete are its files moved into ``--out``, the old ones first set aside so
that any failure (an operating-system error, SIGINT, SIGTERM) puts them back. A manifest of the
folder's files, ``buzzpipe-manifest.json``, is written last: a later run replaces exactly the
files it lists and nothing else, and a non-empty folder that holds neither a manifest nor an
earlier buzzpipe report is refused, so ``--out .`` can never move or delete a user's files.
No file is written through a symbolic link that leads outside ``--out``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from buzzpipe import __version__
from buzzpipe.errors import InputError
from buzzpipe.interrupts import deferred

MANIFEST = "buzzpipe-manifest.json"

# A file's content: its bytes, or a function that writes the file at the path it is given.
Content = bytes | Callable[[Path], None]

# Tests set this to a function called before every file operation (it may raise, to inject an
# interruption at the k-th operation); None in normal runs.
FILE_OPERATION_HOOK: Callable[[str, Path], None] | None = None


def _operation(name: str, path: Path) -> None:
    if FILE_OPERATION_HOOK is not None:
        FILE_OPERATION_HOOK(name, path)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def refuse_overwriting_inputs(
    inputs: Iterable[str | os.PathLike | None],
    *,
    files: Iterable[tuple[str, str | os.PathLike | None]] = (),
    folders: Iterable[tuple[str, str | os.PathLike | None]] = (),
) -> None:
    """Refuse (one line) an output that is, or links to, an input file, or a folder output
    that holds an input. ``files``/``folders``: (option name, path) of the outputs."""
    real_inputs = []
    for given in inputs:
        if given is None or not os.path.isfile(given):
            continue  # a built-in name (norway, norway2010) or a missing file reported later
        real_inputs.append((str(given), _real(given)))
    for option, output in files:
        if output is None:
            continue
        real_output = _real(output)
        for given, real_input in real_inputs:
            same = real_output == real_input
            if not same and os.path.exists(output):
                try:
                    same = os.path.samefile(output, given)  # hard links too
                except OSError:
                    same = False
            if same:
                raise InputError(
                    f"{option} would overwrite the input file {given}",
                    file=str(output),
                    expected="an output path that is not one of the command's inputs",
                )
    for option, output in folders:
        if output is None:
            continue
        real_output = _real(output)
        for given, real_input in real_inputs:
            if _inside(real_input, real_output):
                raise InputError(
                    f"the {option} folder holds the input file {given}",
                    file=str(output),
                    expected="an output folder that does not contain the command's inputs",
                )


def _check_relative(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"not a relative path inside the output folder: {name!r}")
    return relative


def _earlier_files(out: Path, kind: str, new: Iterable[str]) -> list[str]:
    """The files of the earlier output in ``out`` that this run may replace, or a refusal."""
    manifest = out / MANIFEST
    if manifest.is_file() and not manifest.is_symlink():
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
            listed = [str(_check_relative(name)) for name in record["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                "the output folder's manifest is damaged",
                file=str(manifest),
                expected=f"a {MANIFEST} written by buzzpipe (or an empty folder for --out)",
            ) from None
        return listed
    entries = list(out.iterdir())
    if not entries:
        return []
    if _legacy_output(out):
        # an earlier buzzpipe output from before manifests: replace the files we write again
        return [name for name in new if os.path.lexists(out / name)]
    raise InputError(
        f"the output folder is not empty and holds no earlier buzzpipe {kind} "
        f"(no {MANIFEST}); buzzpipe replaces only files it wrote",
        file=str(out),
        expected="a new or empty folder for --out",
    )


def _legacy_output(out: Path) -> bool:
    """A report (results.json and report.html) or a simulation (manifest.json naming its
    scenario) written by buzzpipe before manifests existed."""
    try:
        if (out / "report.html").is_file() and (out / "results.json").is_file():
            record = json.loads((out / "results.json").read_text(encoding="utf-8"))
            return isinstance(record, dict) and "verdicts" in record and "meta" in record
        if (out / "manifest.json").is_file():
            record = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            return isinstance(record, dict) and {"scenario", "files"} <= set(record)
    except (OSError, ValueError, RecursionError):
        return False
    return False


def _refuse_links_outside(out: Path, names: Iterable[str]) -> None:
    """No file is written or moved through a symbolic link that leads outside ``out``."""
    real_out = _real(out)
    for name in names:
        folder = out
        for part in PurePosixPath(name).parts[:-1]:
            folder = folder / part
            if folder.is_symlink() and not _inside(_real(folder), real_out):
                raise InputError(
                    "a folder inside the output folder is a symbolic link to "
                    f"{os.path.realpath(folder)}, outside it; buzzpipe does not write through it",
                    file=str(folder),
                    expected="a real folder (remove the link) or another --out",
                )
            if os.path.lexists(folder) and not folder.is_dir():
                raise InputError(
                    "a file stands where the output needs a folder",
                    file=str(folder),
                    expected="a folder (or another --out)",
                )


def _refuse_file_ancestor(out: Path, what: str) -> None:
    for ancestor in Path(os.path.abspath(out)).parents:
        if os.path.lexists(ancestor) and not ancestor.is_dir():
            raise InputError(
                f"the output {what} would lie under the file {ancestor}",
                file=str(out),
                expected="a path whose parents are folders",
            )


def check_output_file(path: str | os.PathLike, option: str) -> None:
    """Before any work: an output file must not be a folder nor lie under a file."""
    out = Path(path)
    if out.is_dir():
        raise InputError(
            f"{option} is a folder",
            file=str(out),
            expected=f"a file name, e.g. {out / 'results.json'}",
        )
    _refuse_file_ancestor(out, "file")


def check_output_folder(out_dir: str | os.PathLike, *, kind: str = "report") -> None:
    """What can be told before any work: refuse an output folder that is a file, lies under a
    file, or is a non-empty folder of someone else's (``write_folder`` checks again)."""
    out = Path(out_dir)
    if os.path.lexists(out) and not out.is_dir():
        raise InputError("the output folder is a file", file=str(out), expected="a folder")
    _refuse_file_ancestor(out, "folder")
    if out.is_dir():
        _earlier_files(out, kind, ())


def _write_staged(folder: Path, name: str, content: Content) -> None:
    target = folder / name
    _operation("write", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(target)
    else:
        target.write_bytes(content)


def _temporary_folder(out: Path, role: str) -> Path:
    """A hidden sibling of ``out`` (``.NAME.buzzpipe-new-XXXX``); a place that cannot hold one
    (a path under /proc, a read-only folder) is an error naming ``out``, the path the user
    gave, not the temporary's made-up name."""
    parent = _real(out).parent
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.buzzpipe-{role}-", dir=parent))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OSError(
            error.errno, f"cannot write an output folder there ({reason})", str(out)
        ) from None


def write_folder(
    out_dir: str | os.PathLike,
    files: Mapping[str, Content],
    *,
    kind: str = "report",
) -> list[Path]:
    """Write ``files`` (relative path -> content) into ``out_dir`` whole or not at all.

    Returns the paths written (the manifest last). On any exception the folder is left as it
    was: the earlier output, or no folder, and no temporaries beside it.
    """
    out = Path(out_dir)
    names = [str(_check_relative(name)) for name in files]
    if MANIFEST in names:
        raise ValueError(f"{MANIFEST} is written by write_folder itself")
    check_output_folder(out, kind=kind)
    existed = out.is_dir()
    earlier = _earlier_files(out, kind, names) if existed else []
    _refuse_links_outside(out, [*names, *earlier, MANIFEST])
    parent = _real(out).parent
    created_parents = [p for p in (parent, *parent.parents) if not p.exists()]
    _operation("mkdir", parent)
    parent.mkdir(parents=True, exist_ok=True)
    staged = set_aside = None
    try:
        _operation("mkdtemp", parent)
        staged = _temporary_folder(out, "new")
        for name in names:
            _write_staged(staged, name, files[name])
        manifest = {"buzzpipe_manifest": 1, "buzzpipe_version": __version__, "kind": kind,
                    "files": names}  # fmt: skip
        _write_staged(staged, MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        staged.chmod(0o777 & ~_umask())
        if not existed:
            with deferred():
                _operation("rename", out)
                os.rename(staged, out)
                staged = None
        else:
            _operation("mkdtemp", parent)
            set_aside = _temporary_folder(out, "old")
            _replace_files(out, staged, set_aside, earlier, names)
    except BaseException:
        with deferred():
            for created in created_parents:
                _remove_empty(created)
        raise
    finally:
        with deferred():
            for temporary in (staged, set_aside):
                if temporary is not None:
                    shutil.rmtree(temporary, ignore_errors=True)
    return [out / name for name in [*names, MANIFEST]]


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _replace_files(
    out: Path, staged: Path, set_aside: Path, earlier: list[str], names: list[str]
) -> None:
    """Move the earlier files aside, the new ones in (manifest last); undo all on failure."""
    moved_aside: list[str] = []
    moved_in: list[str] = []
    made: list[Path] = []
    try:
        for name in dict.fromkeys([MANIFEST, *earlier, *names]):
            if os.path.lexists(out / name):
                _operation("set aside", out / name)
                (set_aside / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / name, set_aside / name)
                moved_aside.append(name)
        for name in [*names, MANIFEST]:
            _operation("move in", out / name)
            folder = (out / name).parent
            missing = [p for p in (folder, *folder.parents) if _inside(p, out) and not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            made.extend(reversed(missing))
            os.replace(staged / name, out / name)
            moved_in.append(name)
    except BaseException:
        with deferred():
            for name in reversed(moved_in):
                os.replace(out / name, staged / name)
            for name in reversed(moved_aside):
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(set_aside / name, out / name)
            for folder in reversed(made):
                _remove_empty(folder)
        raise
    # folders that only the earlier output used, now empty
    for name in earlier:
        for folder in PurePosixPath(name).parents:
            if str(folder) != ".":
                _remove_empty(out / folder)
