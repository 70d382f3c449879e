"""Values kept in a process between calls, at most a fixed number, the oldest going first.

The design builders and the study keep what formulaic makes slowly (specifications, coding
matrices, the kinds of a specification's columns) for the next formula of the same kind. Two
keyings: by a key's value (:class:`KeptByKey`), and by an object's identity
(:class:`KeptByIdentity`: the object is held with its value, so that its ``id`` is not reused by
another object while the entry lives). Both forget their oldest entry when a new one would pass
the limit; ``clear()`` forgets all (benchmarks that time a first run).
"""

from __future__ import annotations

from typing import Any

__all__ = ["KeptByKey", "KeptByIdentity", "MISSING"]

MISSING: Any = object()  # what ``get`` gives for nothing kept, where None may be a kept value


class KeptByKey:
    """A dict of at most ``size`` entries: the oldest goes when a new key comes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def put(self, key: Any, value: Any) -> Any:
        """Keep ``value`` under ``key``; gives ``value``."""
        if key not in self._entries and len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = value
        return value

    def __contains__(self, key: Any) -> bool:
        return key in self._entries

    def __getitem__(self, key: Any) -> Any:
        return self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class KeptByIdentity:
    """Values kept per object, by its identity, at most ``size`` of them (the oldest goes)."""

    def __init__(self, size: int) -> None:
        self._by_id = KeptByKey(size)

    def get(self, owner: Any, default: Any = None) -> Any:
        entry = self._by_id.get(id(owner))
        return entry[1] if entry is not None and entry[0] is owner else default

    def put(self, owner: Any, value: Any) -> Any:
        """Keep ``value`` for ``owner`` (held, so that its id stays its own); gives ``value``."""
        self._by_id.put(id(owner), (owner, value))
        return value

    def __len__(self) -> int:
        return len(self._by_id)

    def clear(self) -> None:
        self._by_id.clear()
