"""The dashboard of a scheduler in this process shows no traceback to the user (issue 19).

A LocalCluster's scheduler runs in the ``buzzpipe analyze`` process, so its dashboard's request
handlers log there: distributed fails on ``GET /json/identity.json`` when a worker's last
heartbeat carried task metrics (tuple keys that JSON cannot write), and tornado logged the
traceback between the progress bar's lines (the fifth session's million-firm Dask run)."""

import io
import logging
import sys
import urllib.error
import urllib.request

import pytest

from buzzpipe.estimate.dask_engine import quiet_dashboard_errors


@pytest.fixture
def tornado_lines():
    """What ``tornado.application`` writes, through a handler of the test's own."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tornado.application")
    logger.addHandler(handler)
    quiet_dashboard_errors()
    quiet_dashboard_errors()  # idempotent: one filter
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_an_uncaught_exception_of_a_request_is_one_line(tornado_lines) -> None:
    try:
        raise TypeError("keys must be str, int, float, bool or None, not tuple")
    except TypeError:
        logging.getLogger("tornado.application").error(
            "Uncaught exception %s\n%r", "GET /json/identity.json (127.0.0.1)", "request",
            exc_info=sys.exc_info(),
        )  # fmt: skip
    assert tornado_lines.getvalue() == (
        "WARNING dask dashboard: GET /json/identity.json (127.0.0.1) failed (TypeError: keys "
        "must be str, int, float, bool or None, not tuple); the computation is not affected\n"
    )
    filters = logging.getLogger("tornado.application").filters
    assert sum(type(known).__name__ == "_DashboardErrors" for known in filters) == 1


def test_the_dashboard_request_distributed_fails_on_shows_no_traceback(
    tornado_lines, dask_client
) -> None:
    url = dask_client.dashboard_link.replace("/status", "/json/identity.json")
    failed = False
    for value in range(40):  # a request right after a task, before the next heartbeat
        dask_client.submit(abs, -value, pure=False).result()
        try:
            urllib.request.urlopen(url, timeout=10).read()
        except urllib.error.HTTPError as error:
            failed = error.code == 500
            break
    if not failed:
        pytest.skip("distributed answered /json/identity.json: nothing to quiet")
    written = tornado_lines.getvalue()
    assert "Traceback" not in written
    assert written.count("\n") == 1
    assert written.startswith("WARNING dask dashboard: GET /json/identity.json")
