"""``chunks._level_reprs``: the levels a specification key records, read from a categorical's
codes where its categories are strings or objects, equal to the reprs of numpy's object array
of the taken rows (the way they were computed before, at 0.5-0.8 ms a column)."""

import numpy as np
import pandas as pd

from buzzpipe.estimate import chunks


def _reprs_of_taken_values(frame, variable, positions):
    return tuple(sorted(map(repr, pd.unique(np.asarray(frame[variable].array.take(positions))))))


def test_level_reprs_equal_those_of_the_taken_values():
    frame = pd.DataFrame(
        {
            "strings": pd.Categorical(["b", "a", None, "a", "b"] * 20, categories=["b", "a", "z"]),
            "objects": pd.Categorical(pd.Series(["b", "a", None, "a", "b"] * 20, dtype=object)),
            "mixed": pd.Categorical(["x", 1, None, "x", 2.5] * 20),
            "integers": pd.Categorical([1, 2, 3, 2, None] * 20, categories=[3, 1, 2]),
            "floats": pd.Categorical([1.5, 2.0, np.nan, 2.0, 1.5] * 20),
            "booleans": pd.Categorical([True, False, None, True, False] * 20),
            "text": pd.Series(["b", "a", None, "a", "b"] * 20, dtype=object),
            "numbers": [1.0, 2.0, np.nan, 2.0, 1.0] * 20,
        }
    )
    rng = np.random.default_rng(0)
    for variable in frame.columns:
        for _ in range(30):
            size = int(rng.integers(1, 40))
            positions = np.sort(rng.choice(len(frame), size=size, replace=False))
            assert chunks._level_reprs({}, frame, variable, positions) == (
                _reprs_of_taken_values(frame, variable, positions)
            ), variable
