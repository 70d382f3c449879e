"""Compare two ``results.json`` files field by field (numbers within a relative tolerance).

    python bench/compare_results.py OLD/results.json NEW/results.json [--tolerance 1e-10]

Walks both trees together: every number is compared by |a - b| / max(1, |a|, |b|) (NaN equals
NaN, an infinity only itself), every other value exactly, and a key or list entry found on one
side only counts as a difference. Prints the numbers compared, how many differ at all and by more
than the tolerance, the largest relative difference and where, and each difference beyond the
tolerance; exits 1 when there is one. Used to check that a speed change left ``replicate``'s
numbers where they were (issue 18).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def differences(
    old: Any, new: Any, path: str = ""
) -> tuple[list[tuple[str, Any, Any, float]], int]:
    """(path, old, new, relative difference) of every value that differs (relative difference
    ``inf`` for a change of kind or a missing entry), and the count of numbers compared."""
    found: list[tuple[str, Any, Any, float]] = []
    compared = 0
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if key not in old or key not in new:
                found.append(
                    (f"{path}.{key}", old.get(key, "<absent>"), new.get(key, "<absent>"), math.inf)
                )
                continue
            inner, count = differences(old[key], new[key], f"{path}.{key}")
            found += inner
            compared += count
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            found.append((f"{path}[len]", len(old), len(new), math.inf))
        for position, (a, b) in enumerate(zip(old, new, strict=False)):
            inner, count = differences(a, b, f"{path}[{position}]")
            found += inner
            compared += count
    elif _number(old) and _number(new):
        compared = 1
        a, b = float(old), float(new)
        if math.isnan(a) and math.isnan(b) or a == b:
            return found, compared
        if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
            found.append((path, old, new, math.inf))
        else:
            found.append((path, old, new, abs(a - b) / max(1.0, abs(a), abs(b))))
    elif old != new or type(old) is not type(new):
        found.append((path, old, new, math.inf))
    return found, compared


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--tolerance", type=float, default=1e-10)
    args = parser.parse_args()
    with open(args.old) as old_file, open(args.new) as new_file:
        found, compared = differences(json.load(old_file), json.load(new_file))
    beyond = [entry for entry in found if entry[3] > args.tolerance]
    largest = max(found, key=lambda entry: entry[3], default=None)
    print(
        f"{compared} numbers compared; {len(found)} values differ, {len(beyond)} by more than "
        f"{args.tolerance:g} relative"
        + (f"; largest {largest[3]:.3g} at {largest[0]}" if largest else "")
    )
    for path, a, b, relative in beyond:
        print(f"  {path}: {a!r} -> {b!r} ({relative:.3g})")
    return 1 if beyond else 0


if __name__ == "__main__":
    sys.exit(main())
