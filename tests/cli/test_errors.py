"""Error presentation and atomic writes: the plumbing every command relies on."""

import pytest

from buzzpipe.atomic_write import atomic_path, write_text
from buzzpipe.errors import InputError


def test_input_error_names_file_column_rows_value_and_expectation():
    error = InputError(
        "value out of range",
        file="firms.csv",
        column="foreign_share",
        rows=[3, 8],
        value=1.7,
        expected="a share in [0, 1]",
    )
    message = str(error)
    assert "\n" not in message
    for piece in ("firms.csv", "'foreign_share'", "rows 3, 8", "1.7", "expected a share in [0, 1]"):
        assert piece in message


def test_atomic_write_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    write_text(target, "new")
    assert target.read_text() == "new"


def test_atomic_write_gives_ordinary_file_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        target = tmp_path / "report.html"
        write_text(target, "x")
        assert target.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
