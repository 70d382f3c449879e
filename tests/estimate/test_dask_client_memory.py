"""The Dask client's large blocks go back to the system when freed (issue 19: the analyze
process's resident set grew with the firms through malloc's kept heaps)."""

import ctypes
import sys

import pytest

from buzzpipe.estimate import dask_engine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_mmap_threshold_is_fixed_on_glibc():
    try:
        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert dask_engine.return_large_blocks()
    assert dask_engine.return_large_blocks()  # idempotent


def test_elsewhere_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert dask_engine.return_large_blocks() is False
    assert dask_engine.return_free_pages() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_system():
    """Blocks below the mmap threshold come from the heaps; once freed, malloc_trim gives
    their pages back (the process's resident set falls by most of them)."""
    psutil = pytest.importorskip("psutil")
    try:
        ctypes.CDLL("libc.so.6").malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    dask_engine.return_large_blocks()
    process = psutil.Process()
    # 64 MiB in blocks of 128 KiB, each touched, the first of every 16 kept so the heap's top
    # is not free and glibc's own trimming at free() cannot give the rest back
    blocks = [bytearray(128 * 1024 - 64) for _ in range(512)]
    kept = blocks[::16]
    del blocks
    before = process.memory_info().rss
    assert dask_engine.return_free_pages()
    after = process.memory_info().rss
    assert before - after > 32 * 2**20
    del kept


def test_connecting_fixes_it(monkeypatch, dask_client):
    """connect() (every Dask client of the study and of bp.fit) sets it first."""
    called = []
    monkeypatch.setattr(dask_engine, "return_large_blocks", lambda: called.append(1))
    assert dask_engine.connect() is not None
    assert called
