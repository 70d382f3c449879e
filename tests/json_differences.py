"""Where two results.json trees differ beyond a tolerance: the engines' agreement tests."""

import math


def differences(memory, other, tol=1e-10, path="$"):
    """Every place two results.json trees differ: keys, strings, or numbers beyond ``tol``
    (relative above 1)."""
    if isinstance(memory, dict):
        if not isinstance(other, dict) or set(memory) != set(other):
            return [(path, "keys")]
        return [
            d for key in memory for d in differences(memory[key], other[key], tol, f"{path}.{key}")
        ]
    if isinstance(memory, list):
        if not isinstance(other, list) or len(memory) != len(other):
            return [(path, "length")]
        return [
            d
            for i, (a, b) in enumerate(zip(memory, other, strict=True))
            for d in differences(a, b, tol, f"{path}[{i}]")
        ]
    if isinstance(memory, float) and isinstance(other, (int, float)):
        if math.isnan(memory) and math.isnan(other):
            return []
        return [] if abs(memory - other) <= tol * max(1.0, abs(memory)) else [(path, memory, other)]
    return [] if memory == other else [(path, memory, other)]
