"""Resource limits stated and checked before work starts: a size that cannot fit in memory or
on disk is refused with the limit and the way around it, instead of growing until killed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from buzzpipe.errors import InputError

GIB = 1 << 30


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux ``MemAvailable``), or None
    where it cannot be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def free_disk(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system that would hold ``path`` (its nearest existing folder)."""
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _gib(size: float) -> str:
    """A size in the largest binary unit that keeps it at least 1 (B, KiB, MiB, GiB, TiB)."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,.0f} B"


def check_memory(needed: float, what: str, way_around: str) -> None:
    """Refuse ``what`` when it needs more memory than is available."""
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(
            f"{what} needs about {_gib(needed)} of memory and {_gib(available)} are available",
            expected=way_around,
        )


def check_disk(needed: float, path: str | os.PathLike, what: str, way_around: str) -> None:
    """Refuse ``what`` when it would write more than the free space where ``path`` goes."""
    free = free_disk(path)
    if free is not None and needed > free:
        raise InputError(
            f"{what} needs about {_gib(needed)} of disk and {_gib(free)} are free there",
            file=str(path),
            expected=way_around,
        )
