"""The battery leaves the objects made before it to the collector's later passes and passes
over young objects less often (``older_objects_frozen``): frozen and the threshold raised
inside, both given back after, the caller's own freeze and a disabled collector respected, and
cycles made inside still collected."""

import gc
import inspect
from unittest import mock

from buzzpipe.study.battery import YOUNG_PASS_OBJECTS, older_objects_frozen, run_study


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_inside_and_unfrozen_after():
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    with older_objects_frozen():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (max(before[0], YOUNG_PASS_OBJECTS), *before[1:])
        _Cycle()  # garbage made inside: a cycle the collector must still find
        assert gc.collect() >= 1
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_unfrozen_after_an_error():
    try:
        with older_objects_frozen():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] != YOUNG_PASS_OBJECTS


def test_the_callers_freeze_and_a_disabled_collector_are_left_as_they_were():
    """Neither frozen nor unfrozen by the block, thresholds kept, where the caller froze
    objects itself or turned the collector off. (Calls are counted: the frozen count itself
    falls as frozen objects die.)"""
    gc.freeze()
    try:
        thresholds = gc.get_threshold()
        with mock.patch("gc.freeze") as freeze, mock.patch("gc.unfreeze") as unfreeze:
            with older_objects_frozen():
                assert gc.get_threshold() == thresholds
        assert freeze.call_count == 0 and unfreeze.call_count == 0
        assert gc.get_freeze_count() > 0  # still frozen after the block
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        with mock.patch("gc.freeze") as freeze, mock.patch("gc.unfreeze") as unfreeze:
            with older_objects_frozen():
                assert gc.get_freeze_count() == 0
        assert freeze.call_count == 0 and unfreeze.call_count == 0
    finally:
        gc.enable()


def test_run_study_keeps_its_signature_and_documentation():
    assert "source" in inspect.signature(run_study).parameters
    assert run_study.__doc__.startswith("Run the clusters-versus-pipelines battery")


def test_the_report_stage_runs_with_the_older_objects_frozen(tmp_path, monkeypatch):
    """``end_to_end._run`` renders the report inside ``older_objects_frozen`` too (the full pass
    it set off read every object of the process), and gives the collector back after it."""
    import buzzpipe.end_to_end as end_to_end
    from buzzpipe.results import Descriptives
    from buzzpipe.results.records import Source
    from buzzpipe.results.vocabulary import SourceKind

    class Rendered(Exception):
        pass

    seen = []

    def render_report(results, style):
        seen.append((gc.get_freeze_count() > 0, gc.get_threshold()[0]))
        raise Rendered

    monkeypatch.setattr("buzzpipe.report.write_report.render_report", render_report)
    monkeypatch.setattr(end_to_end, "_study", lambda *arguments: mock.MagicMock())
    monkeypatch.setattr(end_to_end, "_describe", lambda *arguments: None)
    monkeypatch.setattr(Descriptives, "from_table", classmethod(lambda cls, table: None))
    before = gc.get_threshold()
    try:
        end_to_end._run(
            lambda: [0] * 60,
            Source(SourceKind.FILE, "survey.csv", 1),
            "title",
            tmp_path / "out",
            end_to_end.StudyOptions(),
            False,
        )
    except Rendered:
        pass
    assert seen == [(True, max(before[0], YOUNG_PASS_OBJECTS))]
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
