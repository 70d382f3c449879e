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


def test_connecting_fixes_it(monkeypatch, dask_client):
    """connect() (every Dask client of the study and of bp.fit) sets it first."""
    called = []
    monkeypatch.setattr(dask_engine, "return_large_blocks", lambda: called.append(1))
    assert dask_engine.connect() is not None
    assert called
