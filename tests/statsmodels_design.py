"""statsmodels' own design of (changed) data, for tests that re-predict with statsmodels."""

import numpy as np
import pandas as pd


def float_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with integer and boolean columns as floats (statsmodels' formulas want them)."""
    data = frame.copy()
    for column in data.columns:
        if pd.api.types.is_integer_dtype(data[column].dtype) or data[column].dtype == bool:
            data[column] = data[column].astype(float)
    return data


def statsmodels_exog(fit, data: pd.DataFrame) -> np.ndarray:
    """statsmodels' design of ``data`` through the fit's formula (its column order)."""
    from patsy import build_design_matrices

    (matrix,) = build_design_matrices([fit.model.data.model_spec], data)
    return np.asarray(matrix, dtype=float)
