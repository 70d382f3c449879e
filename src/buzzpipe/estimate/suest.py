"""Seemingly unrelated estimation (Stata's `suest`): several fitted models stacked into one
parameter vector with a joint sandwich covariance, so coefficients can be compared across models
(is the international effect the same for product and process innovation?).

The stacked covariance is B S B with B the block diagonal of the models' breads (inverse
observed information) and S the cross product of the stacked per-firm scores, with Stata's
factor N/(N-1) (robust) or G/(G-1) (cluster), N and G counted over the union of the samples.
A firm outside one model's estimation sample contributes zero scores to that model, as in
Stata; the sample overlap is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from buzzpipe.errors import EstimationError, InputError
from buzzpipe.estimate.hypothesis_tests import WaldTest, inference_table, wald_test
from buzzpipe.estimate.reference import chi2_sf


@dataclass(frozen=True)
class SampleOverlap:
    """How the models' estimation samples relate (sizes per model, union and intersection)."""

    sizes: dict[str, int]
    n_union: int
    n_common: int
    refitted_on_common: bool = False

    @property
    def identical(self) -> bool:
        return all(size == self.n_union for size in self.sizes.values())

    def __str__(self) -> str:
        per_model = ", ".join(f"{label}: {size}" for label, size in self.sizes.items())
        if self.identical:
            return f"all models use the same {self.n_union} firms"
        if self.refitted_on_common:
            return (
                f"estimation samples differed ({per_model}); every model was refitted on the "
                f"{self.n_common} firms common to all"
            )
        return (
            f"estimation samples differ ({per_model}); {self.n_common} firms are in every "
            f"sample and {self.n_union} in at least one (a firm outside a model's sample adds "
            "zero scores to that model)"
        )


@dataclass(frozen=True, repr=False)
class SuestResult:
    """Stacked coefficients ``model:term`` with their joint robust or cluster covariance."""

    params: pd.Series
    vcov: pd.DataFrame
    labels: tuple[str, ...]
    vcov_type: str
    cluster_var: str | None
    n_clusters: int | None
    nobs: int
    overlap: SampleOverlap

    # Stata's suest reports z statistics: the normal reference for every model.
    uses_t: bool = False

    @property
    def df(self) -> None:
        return None

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.params.index)

    def table(self, level: float = 95.0) -> pd.DataFrame:
        """Estimate, standard error, z, p and confidence interval for every stacked term."""
        return inference_table(
            list(self.params.index),
            self.params.to_numpy(),
            self.vcov.to_numpy(),
            None,
            level,
            index_name="term",
        )

    def test_equal(self, term: str, models: Sequence[str] | None = None) -> WaldTest:
        """Wald test that ``term`` has the same coefficient in all (or the named) models."""
        chosen = list(models) if models is not None else list(self.labels)
        unknown = [label for label in chosen if label not in self.labels]
        if unknown:
            raise InputError("unknown model label", value=unknown, expected=str(self.labels))
        if len(chosen) < 2:
            raise InputError("equality across models needs at least two models", value=chosen)
        names = [f"{label}:{term}" for label in chosen]
        missing = [name for name in names if name not in self.params.index]
        if missing:
            raise InputError(
                "a model has no coefficient of that name", value=missing, expected="a shared term"
            )
        restrictions = [f"_b[{names[0]}] = _b[{name}]" for name in names[1:]]
        return wald_test(self, restrictions)

    def __str__(self) -> str:
        header = f"suest of {', '.join(self.labels)}: N = {self.nobs}, vcov {self.vcov_type}" + (
            f" ({self.n_clusters} clusters of {self.cluster_var})" if self.cluster_var else ""
        )
        return f"{header}\n{self.overlap}\n{self.table().to_string()}"

    def __repr__(self) -> str:
        return str(self)


def _labels(fits: Sequence[object], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        labels = [str(name) for name in names]
        if len(labels) != len(fits) or len(set(labels)) != len(labels):
            raise InputError(
                "suest names must be unique, one per model",
                value=labels,
                expected=f"{len(fits)} distinct names",
            )
        return labels
    outcomes = [str(getattr(fit, "outcome", "") or f"model{i + 1}") for i, fit in enumerate(fits)]
    if len(set(outcomes)) == len(outcomes):
        return outcomes
    return [f"model{i + 1}_{outcome}" for i, outcome in enumerate(outcomes)]


def suest(
    fits: Sequence[object],
    data: pd.DataFrame,
    vcov: str | Mapping[str, str] = "robust",
    names: Sequence[str] | None = None,
    sample: str = "union",
    source: Any = None,
) -> SuestResult:
    """Stata's ``suest``: stack several fits with a joint robust or cluster covariance.

    Parameters
    ----------
    fits : sequence of Fit
        Models fitted on the same ``data`` (any families, any covariances: suest recomputes it).
    data : pandas.DataFrame
        The data the models were fitted on; firms are matched across models by row id.
    vcov : "robust" or dict, default "robust"
        ``"robust"`` or ``{"cluster": column}``.
    names : sequence of str, optional
        Labels of the models (default their outcomes, made unique).
    sample : {"union", "common"}, default "union"
        Where the samples differ: ``"union"`` keeps each model as fitted (a firm adds zero scores
        to a model it is not in, as Stata's suest); ``"common"`` refits every model on the firms
        common to all, so all coefficients describe the same firms.
    source : chunk source, optional
        ``data``'s rows as chunks (row ids their positions; ``estimate/sources.py``, a Dask
        cluster's partitions): the scores' cross product is summed chunk by chunk where the
        chunks are, and no per-firm score is held here (robust, ``sample="union"``).

    Returns
    -------
    SuestResult
        ``params`` named ``model:term``, their joint ``vcov``, ``table()`` and
        ``test_equal(term)`` (a :class:`WaldTest` that a term is equal across models).

    Notes
    -----
    The covariance is the sandwich of the stacked scores with Stata's small-sample factor
    (N/(N-1), or G/(G-1) by cluster); the reference is normal for every model, as in Stata.

    Examples
    --------
    >>> import buzzpipe as bp
    >>> firms = bp.synthesize("norway2010", seed=1, firms=500).analysis_frame()
    >>> product = bp.fit("product ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> process = bp.fit("process ~ breadth_regional + breadth_international + log(employees)",
    ...                  firms, vcov="robust")
    >>> both = bp.suest([product, process], firms)
    >>> both.labels
    ('product', 'process')
    >>> round(both.test_equal("breadth_international").p_value, 4)
    0.2617
    """
    if sample not in ("union", "common"):
        raise InputError("unknown suest sample", value=sample, expected="'union' or 'common'")
    fits = list(fits)
    if not fits:
        raise InputError("suest needs at least one fitted model")
    if vcov == "robust":
        vcov_type, cluster_var = "robust", None
    elif isinstance(vcov, Mapping) and set(vcov) == {"cluster"}:
        vcov_type, cluster_var = "cluster", str(vcov["cluster"])
        if cluster_var not in data.columns:
            raise InputError("the cluster column is not in the data", column=cluster_var)
    else:
        raise InputError(
            "suest computes a robust or cluster covariance",
            value=vcov,
            expected="'robust' or {'cluster': column}",
        )
    if not data.index.is_unique:
        raise InputError(
            "the data's index has duplicate labels, so firms cannot be matched across models",
            expected="a unique index",
        )
    labels = _labels(fits, names)
    union = pd.Index([])
    samples = []
    for fit in fits:
        row_ids = pd.Index(fit.row_ids)
        missing = row_ids.difference(data.index)
        if len(missing):
            raise InputError(
                f"the data lack {len(missing)} rows of a model's estimation sample",
                rows=list(missing[:5]),
                expected="the data frame the models were fitted on",
            )
        samples.append(row_ids)
        union = union.union(row_ids, sort=False)
    union = data.index[data.index.isin(union)]  # data order
    common = samples[0]
    for other in samples[1:]:
        common = common.intersection(other)
    sizes = {label: len(rows) for label, rows in zip(labels, samples, strict=True)}
    refitted = False
    if sample == "common" and any(len(rows) != len(common) for rows in samples):
        if len(common) == 0:
            raise EstimationError("the models' estimation samples share no firm")
        fits = [_refit(fit, data.loc[data.index.isin(common)]) for fit in fits]
        union, refitted = data.index[data.index.isin(common)], True

    breads = [np.asarray(fit.bread, dtype=float) for fit in fits]
    stacked_names = [f"{label}:{name}" for label, fit in zip(labels, fits, strict=True)
                     for name in fit.params.index]  # fmt: skip
    n_union = len(union)
    if source is not None:
        if vcov_type != "robust" or refitted:
            raise InputError(
                "suest over chunks computes a robust covariance of the models as fitted",
                value=vcov,
                expected="vcov='robust', sample='union'",
            )
        members = [np.packbits(data.index.isin(pd.Index(fit.row_ids))) for fit in fits]
        light = [replace(fit, row_ids=pd.RangeIndex(0)) for fit in fits]  # no per-firm part
        meat = source.map_reduce(chunk_meat, light, members, len(data))
        n_clusters, factor = None, n_union / (n_union - 1)
    else:
        meat, factor, n_clusters = _meat(fits, data, union, cluster_var)
    bread = _block_diagonal(breads)
    covariance = factor * (bread @ meat @ bread)
    covariance = (covariance + covariance.T) / 2.0
    params = pd.Series(
        np.concatenate([fit.params.to_numpy(dtype=float) for fit in fits]), index=stacked_names
    )
    overlap = SampleOverlap(
        sizes=sizes, n_union=n_union, n_common=len(common), refitted_on_common=refitted
    )
    return SuestResult(
        params=params,
        vcov=pd.DataFrame(covariance, index=stacked_names, columns=stacked_names),
        labels=tuple(labels),
        vcov_type=vcov_type,
        cluster_var=cluster_var,
        n_clusters=n_clusters,
        nobs=n_union,
        overlap=overlap,
    )


def _meat(
    fits: Sequence[Any], data: pd.DataFrame, union: pd.Index, cluster_var: str | None
) -> tuple[np.ndarray, float, int | None]:
    """The meat of the stacked scores held here, its small-sample factor and the clusters."""
    stacked_scores = np.hstack([_scores_block(fit, data, union) for fit in fits])
    if cluster_var is None:
        return stacked_scores.T @ stacked_scores, len(union) / (len(union) - 1), None
    clusters = data.loc[union, cluster_var]
    if clusters.isna().any():
        rows = list(union[clusters.isna().to_numpy()])
        raise InputError(
            "the cluster column has missing values in the estimation samples",
            column=cluster_var,
            rows=rows,
        )
    codes, uniques = pd.factorize(clusters, sort=True)
    n_clusters = len(uniques)
    if n_clusters < 2:
        raise EstimationError("a cluster covariance needs at least two clusters")
    sums = np.zeros((n_clusters, stacked_scores.shape[1]))
    np.add.at(sums, codes, stacked_scores)
    return sums.T @ sums, n_clusters / (n_clusters - 1), n_clusters


def _scores_block(fit: Any, data: pd.DataFrame, union: pd.Index) -> np.ndarray:
    """A model's scores on the union's rows (zero where the firm is outside its sample)."""
    scores = fit.scores(data)
    block = np.zeros((len(union), scores.shape[1]))
    block[union.get_indexer(scores.index)] = scores.to_numpy(dtype=float)
    return block


def chunk_meat(
    chunk: pd.DataFrame,
    where: str,
    first_row: int,
    fits: Sequence[Any],
    members: Sequence[np.ndarray],
    rows: int,
) -> np.ndarray:
    """One chunk's part of suest's meat: the cross product of its stacked scores (a model's
    zero outside its sample, ``members`` its packed bits over the data's ``rows``)."""
    stop = first_row + len(chunk)
    blocks = []
    union = np.zeros(len(chunk), dtype=bool)
    for fit, bits in zip(fits, members, strict=True):
        inside = np.unpackbits(bits, count=rows)[first_row:stop].astype(bool)
        own = replace(fit, row_ids=chunk.index[inside])
        blocks.append(_scores_block(own, chunk, chunk.index))
        union |= inside
    stacked = np.hstack(blocks)[union]
    return stacked.T @ stacked


def _refit(model: object, rows: pd.DataFrame) -> object:
    """The same model (formula, family, weights, offset column) estimated on ``rows``."""
    from buzzpipe.estimate import fit

    offset = getattr(model, "offset", None)
    if offset is not None and not isinstance(offset, str):
        raise InputError(
            "a model fitted with an offset array cannot be refitted on the common sample",
            expected="the offset as a column name, or sample='union'",
        )
    return fit(
        model.formula,
        rows,
        family=model.family,
        vcov="robust",
        weights=getattr(model, "weights", None),
        offset=offset,
    )


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    size = sum(block.shape[0] for block in blocks)
    result = np.zeros((size, size))
    start = 0
    for block in blocks:
        stop = start + block.shape[0]
        result[start:stop, start:stop] = block
        start = stop
    return result


def chi2_p_value(statistic: float, df: int) -> float:
    """Upper tail of chi2(df) (kept for callers that format suest tests themselves)."""
    return float(chi2_sf(statistic, df))
