"""The fitted model: estimates, Stata-convention covariance and what later steps need, not the data.

A :class:`Fit` keeps the coefficients, the bread (inverse observed information), the robust meat,
the cluster score sums, the estimation-sample row ids and the formulaic specification, so margins,
counterfactuals, tests and bootstraps rebuild designs for perturbed data through the same
specification (``fit.design_matrix(new_data)``). Term names are formulaic's (``Intercept``,
``C(industry)[T.ict]``, ``log(employees)``); ordered-logit cut points are ``cut1``, ``cut2``, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate.design import FORMULA_CONTEXT, rebuild_matrix
from buzzpipe.estimate.families import Family
from buzzpipe.estimate.hypothesis_tests import TestStatistic
from buzzpipe.estimate.reference import chi2_sf, f_sf, quantile, two_sided_p

__all__ = ["Fit"]


@dataclass
class Fit:
    """One estimated model: estimates, Stata-convention covariance and what later steps need.

    Build it with :func:`buzzpipe.fit`; a Fit keeps no data, so the steps after it
    (:meth:`margins`, :meth:`wald_test`, :meth:`lincom`, :meth:`nlcom`, :func:`buzzpipe.bootstrap`)
    take the data again and rebuild the design through the fitted specification.

    Parameters
    ----------
    family, formula, outcome : str
        The model as fitted.
    params : pandas.Series
        Coefficients by term name (formulaic's: ``Intercept``, ``log(employees)``,
        ``C(industry)[T.ict]``); ``cut1``, ``cut2``, ... for the ordered logit.
    vcov : pandas.DataFrame
        Their covariance under ``vcov_type`` ("classical", "robust" or "cluster").
    bread, meat, cluster_score_sums, vcov_factor
        The pieces of the covariance: ``vcov = vcov_factor * bread @ meat @ bread`` (classical:
        ``vcov_factor * bread``); ``bread`` is the inverse observed information; ``meat`` is
        None for classical fits, where no pass over the data computes scores.
    row_ids : pandas.Index
        The data index labels of the estimation sample.
    model_spec : formulaic.ModelSpec
        The right-hand side's specification (``design_matrix(new_data)`` rebuilds X through it).
    notes : list of str
        Dropped terms and rows, separation, cluster warnings.

    Notes
    -----
    Fields are filled in by :func:`buzzpipe.fit`; the constructor is not for users. ``bse``,
    ``pvalues``, ``conf_int()``, ``odds_ratios()`` and ``summary()`` follow statsmodels' names;
    ``uses_t`` says whether tests use the t/F reference (the LPM, as Stata's ``regress``).

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> product.nobs, product.vcov_type
    (500, 'robust')
    >>> print(product.odds_ratios()["odds_ratio"].round(3).to_string())
    Intercept                0.425
    breadth_regional         0.974
    breadth_international    1.340
    log(employees)           1.172
    >>> round(float(product.margins(firms, "breadth_international").estimate.iloc[0]), 4)
    0.0707
    >>> round(product.wald_test("breadth_international = breadth_regional").p_value, 4)
    0.0056
    >>> round(product.lincom("breadth_international - breadth_regional").estimate, 4)
    0.3186
    """

    family: str
    formula: str
    outcome: str
    params: pd.Series
    vcov: pd.DataFrame
    llf: float
    llnull: float
    nobs: int
    df_model: int
    df_resid: int
    iterations: int
    converged: bool
    vcov_type: str
    cluster_var: str | None
    n_clusters: int | None
    uses_t: bool
    bread: np.ndarray
    meat: np.ndarray | None
    cluster_score_sums: np.ndarray | None
    vcov_factor: float
    row_ids: pd.Index
    model_spec: Any
    outcome_spec: Any
    x_names: list[str]
    weights: str | None
    offset: str | np.ndarray | None  # column name, or the estimation sample's offset array
    n_dropped_missing: int
    notes: list[str] = field(default_factory=list)
    r2: float = float("nan")
    category_values: tuple = ()
    family_model: Family | None = None
    joint_tests_possible: bool = True

    # ---- inference -------------------------------------------------------------------------
    @property
    def bse(self) -> pd.Series:
        """Standard errors under the fit's covariance convention."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.params.index)

    @property
    def zvalues(self) -> pd.Series:
        """Coefficient over standard error (a t statistic for the LPM)."""
        return self.params / self.bse

    tvalues = zvalues

    @property
    def df_inference(self) -> float:
        """Degrees of freedom of the t reference (LPM): N-K, or G-1 with clusters; inf otherwise."""
        if not self.uses_t:
            return float("inf")
        if self.vcov_type == "cluster":
            return float(self.n_clusters - 1)
        return float(self.df_resid)

    def _reference_df(self) -> float | None:
        return self.df_inference if self.uses_t else None

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values against the normal (t for the LPM) reference."""
        return pd.Series(self.inference_arrays()[2], index=self.params.index)

    def inference_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coefficients, standard errors, two-sided p-values) as arrays in the order of
        ``params``: the numbers of ``params``, ``bse`` and ``pvalues``, computed once, without
        a pandas Series for each (the study reads them for every model it records)."""
        params = self.params.to_numpy(dtype=float)
        errors = np.sqrt(np.diag(self.vcov.to_numpy()))
        return params, errors, two_sided_p(params / errors, self._reference_df())

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals, columns ``lower`` and ``upper``."""
        critical = quantile(1 - alpha / 2, self._reference_df())
        return pd.DataFrame(
            {"lower": self.params - critical * self.bse, "upper": self.params + critical * self.bse}
        )

    @property
    def pseudo_r2(self) -> float:
        """McFadden's pseudo-R2, 1 - llf/llnull (NaN for the LPM: see ``r2``)."""
        if self.uses_t:
            return float("nan")
        return 1.0 - self.llf / self.llnull

    @property
    def n_params(self) -> int:
        return int(self.params.shape[0])

    @property
    def aic(self) -> float:
        """-2 llf + 2k, k the number of estimated parameters (Stata's ``estat ic``)."""
        return -2.0 * self.llf + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """-2 llf + k ln N (Stata's ``estat ic``)."""
        return -2.0 * self.llf + np.log(self.nobs) * self.n_params

    @property
    def cut_names(self) -> list[str]:
        return [name for name in self.params.index if name not in self.x_names]

    @property
    def design_info(self) -> Any:
        """The formulaic specification of the right-hand side (alias of ``model_spec``)."""
        return self.model_spec

    def model_test(self) -> TestStatistic | None:
        """Wald test that every slope is zero: chi2(k), or F(k, df) for the LPM (Stata's header).

        ``None`` when the covariance cannot support it (too few clusters for the restrictions).
        """
        slopes = [name for name in self.x_names if name != "Intercept"]
        if not slopes:
            return None
        df = len(slopes)
        if not self.joint_tests_possible or (
            self.vcov_type == "cluster" and self.n_clusters is not None and df > self.n_clusters - 1
        ):
            return None
        b = self.params[slopes].to_numpy()
        V = self.vcov.loc[slopes, slopes].to_numpy()
        try:
            statistic = float(b @ np.linalg.solve(V, b))
        except np.linalg.LinAlgError:
            return None
        if self.uses_t:
            f = statistic / df
            p_value = float(f_sf(f, df, self.df_inference))
            return TestStatistic("F", f, (df, self.df_inference), p_value)
        return TestStatistic("chi2", statistic, (df,), float(chi2_sf(statistic, df)))

    # ---- new data --------------------------------------------------------------------------
    def design_matrix(self, new_data: pd.DataFrame) -> np.ndarray:
        """X for ``new_data`` through the fitted specification (kept columns, fitted order)."""
        return rebuild_matrix(self.model_spec, self.x_names, new_data)

    def _offset_for(self, data: pd.DataFrame, offset: np.ndarray | None) -> np.ndarray | None:
        if offset is not None:
            return np.asarray(offset, dtype=np.float64)
        if isinstance(self.offset, str):
            return pd.to_numeric(data[self.offset], errors="coerce").to_numpy(np.float64)
        if self.offset is not None:
            raise InputError(
                "this model was fitted with an offset array: pass offset= for the new rows"
            )
        return None

    def _slopes(self) -> np.ndarray:
        return self.params.to_numpy()

    def linear_predictor(self, data: pd.DataFrame, offset: np.ndarray | None = None) -> np.ndarray:
        """x'b (+ offset) for each row of ``data``."""
        X = self.design_matrix(data)
        eta = X @ self.params[self.x_names].to_numpy()
        off = self._offset_for(data, offset)
        return eta if off is None else eta + off

    def predict(
        self, data: pd.DataFrame, which: str = "prob", offset: np.ndarray | None = None
    ) -> pd.Series | pd.DataFrame:
        """Predicted probabilities (``which="prob"``) or linear predictions (``"linear"``).

        Ordered logit probabilities come as a frame with one column per outcome category.
        """
        if which not in ("prob", "linear"):
            raise InputError("unknown prediction", value=which, expected="'prob' or 'linear'")
        X = self.design_matrix(data)
        off = self._offset_for(data, offset)
        assert self.family_model is not None
        if which == "linear":
            eta = X @ self.params[self.x_names].to_numpy()
            return pd.Series(eta if off is None else eta + off, index=data.index, name="xb")
        probabilities = self.family_model.predict(self.params.to_numpy(), X, off)
        if probabilities.ndim == 2:
            return pd.DataFrame(probabilities, index=data.index, columns=list(self.category_values))
        return pd.Series(probabilities, index=data.index, name="prob")

    def scores(self, data: pd.DataFrame, offset: np.ndarray | None = None) -> pd.DataFrame:
        """Per-observation scores on the estimation rows of ``data``, times the sampling weights.

        Their cross product is ``meat``; their cluster sums are ``cluster_score_sums``.
        """
        if self.row_ids.equals(data.index):  # every row, in order: the frame as it stands
            rows = data
        else:
            missing = self.row_ids.difference(data.index)
            if len(missing):
                raise InputError(
                    "the data lack rows of the estimation sample", rows=list(missing)[:5]
                )
            rows = data.loc[self.row_ids]
        X = self.design_matrix(rows)
        y = self._outcome_values(rows)
        if self.category_values:
            y = np.searchsorted(np.asarray(self.category_values, dtype=np.float64), y).astype(
                np.float64
            )
        if offset is None and isinstance(self.offset, np.ndarray):
            off = self.offset  # the estimation sample's own offset array
        else:
            off = self._offset_for(rows, offset)
        assert self.family_model is not None
        scores = self.family_model.scores(self.params.to_numpy(), X, y, off)
        if self.weights is not None:
            scores = scores * pd.to_numeric(rows[self.weights]).to_numpy(np.float64)[:, None]
        return pd.DataFrame(scores, index=self.row_ids, columns=self.params.index)

    def _outcome_values(self, rows: pd.DataFrame) -> np.ndarray:
        """The outcome on the estimation rows as float64: the column itself where the outcome's
        specification is that one column (formulaic's matrix holds its values as they are),
        else through the specification."""
        names = [str(name) for name in getattr(self.outcome_spec, "column_names", ())]
        column = rows.get(self.outcome) if names == [self.outcome] else None
        if column is not None and pd.api.types.is_numeric_dtype(column.dtype):
            if not pd.api.types.is_bool_dtype(column.dtype):
                return column.to_numpy(dtype=np.float64)
        return np.asarray(
            self.outcome_spec.get_model_matrix(rows, na_action="ignore", context=FORMULA_CONTEXT),
            dtype=np.float64,
        )[:, 0]

    # ---- presentation ----------------------------------------------------------------------
    def odds_ratios(self, alpha: float = 0.05) -> pd.DataFrame:
        """Stata's ``eform``: exp(b), exp(b) * se, z, p and exp of the CI bounds.

        Logit and ordered logit only (ordered logit: slopes; cut points are not odds ratios).
        """
        if self.family not in ("logit", "ologit"):
            raise EstimationError(
                f"odds ratios are defined for logit and ologit models, not {self.family}"
            )
        names = self.x_names
        odds = np.exp(self.params[names])
        interval = self.conf_int(alpha).loc[names]
        return pd.DataFrame(
            {
                "odds_ratio": odds,
                "std_err": odds * self.bse[names],
                "z": self.zvalues[names],
                "p": self.pvalues[names],
                "lower": np.exp(interval["lower"]),
                "upper": np.exp(interval["upper"]),
            }
        )

    def summary(self, alpha: float = 0.05) -> str:
        """A Stata-like coefficient table with the header statistics and notes."""
        from buzzpipe.estimate.table import summary_table

        return summary_table(self, alpha)

    # ---- the steps after a fit (the free functions of the same names) ---------------------
    def margins(self, data: pd.DataFrame, variables: Any = None, **options: Any) -> Any:
        """Effects on the probability scale: :func:`buzzpipe.margins` of this fit.

        Parameters
        ----------
        data : pandas.DataFrame
            The data the model was fitted on (the estimation sample is found by row id).
        variables : str, list of str or "*", optional
            As for :func:`buzzpipe.margins`; ``None`` gives predictive margins.
        **options
            ``at``, ``by``, ``at_means``, ``kind``, ``base``, ``outcome_labels``, ``level``.

        Returns
        -------
        MarginsResult
            Estimates with delta-method errors (see :func:`buzzpipe.margins`).
        """
        from buzzpipe.estimate.margins import margins

        return margins(self, data, variables, **options)

    def wald_test(self, hypothesis: Any, q: Any = None, df: float | None | str = "fit") -> Any:
        """Stata's ``test`` on this fit: :func:`buzzpipe.wald_test`.

        Parameters
        ----------
        hypothesis : str, list of str or array_like
            Restrictions as text (``"x1 = x2; x3"``) or a matrix R.
        q : array_like, optional
            The right-hand side of R b = q (matrix form only; default zeros).
        df : float, None or "fit", default "fit"
            The reference: the fit's own (F for the LPM), None for chi2.

        Returns
        -------
        WaldTest
            A :class:`~buzzpipe.estimate.hypothesis_tests.TestStatistic` with the restrictions.
        """
        from buzzpipe.estimate.hypothesis_tests import wald_test

        return wald_test(self, hypothesis, q, df)

    def lincom(self, expression: str, level: float = 95.0, df: float | None | str = "fit") -> Any:
        """Stata's ``lincom`` on this fit: :func:`buzzpipe.lincom`.

        Parameters
        ----------
        expression : str
            A linear combination of coefficient names, e.g. ``"x1 - x2"``.
        level : float, default 95.0
            Confidence level in percent.
        df : float, None or "fit", default "fit"
            The reference: the fit's own (t for the LPM), None for the normal.

        Returns
        -------
        Combination
            Estimate, standard error, statistic, p-value and confidence interval.
        """
        from buzzpipe.estimate.hypothesis_tests import lincom

        return lincom(self, expression, level, df)

    def nlcom(self, expressions: Any, level: float = 95.0, df: float | None | str = None) -> Any:
        """Stata's ``nlcom`` on this fit: :func:`buzzpipe.nlcom`.

        Parameters
        ----------
        expressions : str, callable, list or dict
            Nonlinear combinations of coefficient names (a dict names them).
        level : float, default 95.0
            Confidence level in percent.
        df : float, None or "fit", default None
            The reference: normal (Stata's ``nlcom``), or "fit" for the fit's own.

        Returns
        -------
        Combination
            Delta-method estimates, one row per expression.
        """
        from buzzpipe.estimate.hypothesis_tests import nlcom

        return nlcom(self, expressions, level, df)

    def to_dict(self, alpha: float = 0.05) -> dict[str, Any]:
        """Plain, JSON-ready numbers and labels (the shape ``results.json`` files take)."""
        interval = self.conf_int(alpha)

        def number(value: float) -> float | None:
            return float(value) if np.isfinite(value) else None

        return {
            "family": self.family,
            "formula": self.formula,
            "outcome": self.outcome,
            "vcov_type": self.vcov_type,
            "cluster_var": self.cluster_var,
            "n_clusters": self.n_clusters,
            "weights": self.weights,
            "nobs": self.nobs,
            "n_dropped_missing": self.n_dropped_missing,
            "llf": number(self.llf),
            "llnull": number(self.llnull),
            "pseudo_r2": number(self.pseudo_r2),
            "r2": number(self.r2),
            "aic": number(self.aic),
            "bic": number(self.bic),
            "iterations": self.iterations,
            "converged": self.converged,
            "terms": [
                {
                    "term": name,
                    "coef": number(self.params[name]),
                    "std_err": number(self.bse[name]),
                    "statistic": number(self.zvalues[name]),
                    "p": number(self.pvalues[name]),
                    "lower": number(interval.loc[name, "lower"]),
                    "upper": number(interval.loc[name, "upper"]),
                }
                for name in self.params.index
            ],
            "vcov": [[number(v) for v in row] for row in self.vcov.to_numpy()],
            "reference": f"t({self.df_inference:g})" if self.uses_t else "normal",
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return (
            f"<Fit {self.family} {self.formula!r}: N={self.nobs}, llf={self.llf:.4f}, "
            f"vcov={self.vcov_type}>"
        )
