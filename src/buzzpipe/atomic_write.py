"""Write output files atomically: to a temporary file beside the target, then rename."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_sibling(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty temporary file in the target's folder; it is removed at the end unless
    it was renamed away meanwhile."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    temporary = Path(temporary)
    # mkstemp creates 0600; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    temporary.chmod(0o666 & ~umask)
    try:
        yield temporary
    finally:
        if temporary.exists():
            temporary.unlink()


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto the target on success.

    On any error the temporary file is removed and the target is left as it was.
    """
    with temporary_sibling(target) as temporary:
        yield temporary
        os.replace(temporary, target)


def replace_together(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each (temporary, target) pair; if any rename fails, or SIGINT/SIGTERM arrives,
    every target is left as it was (earlier ones are put back from a kept copy)."""
    from buzzpipe.interrupts import deferred

    with deferred():
        kept: list[tuple[Path, Path]] = []
        done: list[Path] = []
        try:
            for temporary, target in pairs:
                if os.path.lexists(target):
                    handle, backup = tempfile.mkstemp(
                        prefix=f".{target.name}.", suffix=".old", dir=target.parent
                    )
                    os.close(handle)
                    os.replace(target, backup)
                    kept.append((Path(backup), target))
                os.replace(temporary, target)
                done.append(target)
        except BaseException:
            for target in done:
                target.unlink(missing_ok=True)
            for backup, target in kept:
                os.replace(backup, target)
            raise
        for backup, _ in kept:
            backup.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write text to target atomically."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write bytes to target atomically."""
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)
