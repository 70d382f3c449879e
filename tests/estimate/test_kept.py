"""The process's bounded caches: the oldest entry goes, identity keys hold their object."""

from buzzpipe.estimate.kept import MISSING, KeptByIdentity, KeptByKey


def test_kept_by_key_forgets_the_oldest_entry_first():
    kept = KeptByKey(2)
    assert kept.put("a", 1) == 1
    kept.put("b", 2)
    kept.put("a", 10)  # a key already kept: nothing goes
    assert len(kept) == 2 and kept["a"] == 10
    kept.put("c", 3)  # "a" came first, so it goes, although it was set again
    assert "a" not in kept and kept.get("a") is None
    assert kept["b"] == 2 and kept["c"] == 3
    kept.clear()
    assert len(kept) == 0


def test_kept_by_identity_answers_only_for_the_same_object():
    kept = KeptByIdentity(2)
    first, equal = [1, 2], [1, 2]
    kept.put(first, None)  # None is a value like another
    assert kept.get(first, MISSING) is None
    assert kept.get(equal, MISSING) is MISSING  # equal, but another object
    second, third = object(), object()
    kept.put(second, "s")
    kept.put(third, "t")
    assert kept.get(first, MISSING) is MISSING  # the oldest went
    assert kept.get(second) == "s" and kept.get(third) == "t" and len(kept) == 2
