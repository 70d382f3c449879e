"""The fit over chunks: Parquet row groups streamed on one machine, or Dask partitions.

Every pass over the data is ``source.map_designs(spec, function, ...)``: each chunk's design is
built from its rows alone through the specification fixed once (``chunks.py``), ``function``
returns p x p (or smaller) sums, and the sums are added in a fixed tree. Nothing of the data
outlives a pass; the fit keeps the estimation sample's row ids (global row positions).

Passes: (1) levels: one row per distinct value of each categorical variable; (2) the sample's
summaries: X'WX (collinearity, Stata's order), indicator cells (perfect prediction), outcome
values, weight and cluster totals; (3) Newton steps, one pass each (``newton.py``); (4) at the
estimate: the robust meat, the cluster score sums (G x k) and the determined rows. The answer
equals the in-memory fit's to rounding (1e-10 is tested) for logit, probit, ordered logit and the
LPM, with weights, offsets and clusters.

Perfect prediction is handled as in memory (Stata's rule): a factor's reference level, or an
indicator's cell, whose rows all fail or all succeed (for the ordered logit: all lie in the lowest
or the highest category) leaves the sample, with the same notes. The one difference, on data it
would change: a non-converging fit is not searched for a separating combination of regressors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from buzzpipe.errors import (
    EstimationError,
    InputError,
    NonConvergenceError,
    NoVariationError,
    SeparationError,
    TooFewError,
)
from buzzpipe.estimate import chunks, diagnostics
from buzzpipe.estimate.covariance import (
    SandwichPieces,
    parse_vcov,
)
from buzzpipe.estimate.diagnostics import DETERMINED
from buzzpipe.estimate.families import Family, OrderedLogit, get_family
from buzzpipe.estimate.finish import finish_fit
from buzzpipe.estimate.kernel import block_sums
from buzzpipe.estimate.newton import newton
from buzzpipe.estimate.result import Fit

__all__ = ["fit_source"]


# ---- per-chunk functions (module level: Dask ships them to workers) ----


def scan_levels(frame, where, first_row, variables, level_variables, roles) -> dict:
    usable = chunks.usable_rows(frame, variables, where=where, **roles)
    levels = chunks.level_rows(frame, usable, level_variables)
    return {"levels": [levels, frame.loc[usable].iloc[:8]], "rows": len(frame)}


def summarise(chunk: chunks.DesignChunk, factors: list[list[int]] | None = None) -> dict:
    X, y = chunk.X, chunk.y
    w = np.ones(y.shape[0]) if chunk.weights is None else chunk.weights
    values, codes = np.unique(y, return_inverse=True)
    totals = np.bincount(codes, weights=w, minlength=values.size)
    result = {
        "nobs": chunk.nobs,
        "usable": chunk.n_usable,
        "rows": chunk.n_rows,
        "gram": diagnostics.cross_products(X, chunk.weights),
        "not_indicator": (~((X == 0.0) | (X == 1.0)).all(axis=0)).astype(np.int64),
        "outcomes": dict(zip(values.tolist(), totals.tolist(), strict=True)),
        "wsum": float(w.sum()),
        "wy": float(w @ y),
        "wyy": float(w @ (y * y)),
        "nonfinite": set(chunk.nonfinite.tolist()),
        "levels": [] if chunk.level_rows is None else [chunk.level_rows],
        "clusters": set() if chunk.cluster_values is None else set(chunk.cluster_values.tolist()),
    }
    if X.shape[0]:
        result["ones"] = X.T @ np.column_stack([w * y, w * (1.0 - y)])
    if factors:  # the reference cells' outcomes, so that looking for their separation costs no pass
        result["reference"] = reference_counts(chunk, factors)
    return result


def ordinal_cells(chunk: chunks.DesignChunk, lowest: float, highest: float) -> dict:
    w = np.ones(chunk.nobs) if chunk.weights is None else chunk.weights
    above = (chunk.y > lowest).astype(np.float64)
    top = (chunk.y == highest).astype(np.float64)
    X = chunk.X
    return {
        "above": X.T @ np.column_stack([w * above, w * (1.0 - above)]),
        "top": X.T @ np.column_stack([w * top, w * (1.0 - top)]),
        "above_total": np.array([w @ above, w @ (1.0 - above)]),
        "top_total": np.array([w @ top, w @ (1.0 - top)]),
    }


def reference_counts(chunk: chunks.DesignChunk, factors: list[list[int]]) -> tuple:
    """Per factor: the outcome values of its reference cell's rows (all indicators 0) -> rows."""
    counts = []
    for columns in factors:
        values, n = np.unique(chunk.y[chunk.X[:, columns].sum(axis=1) == 0], return_counts=True)
        counts.append(dict(zip(values.tolist(), n.tolist(), strict=True)))
    return tuple(counts)


def loglike(chunk: chunks.DesignChunk, family: Family, params: np.ndarray, null: bool = False):
    if chunk.nobs == 0:
        return None
    X = chunk.X
    if null:
        X = np.ones((chunk.nobs, 0 if isinstance(family, OrderedLogit) else params.shape[0]))
    if null:
        sums = block_sums(family, params, X, chunk.y, chunk.weights, chunk.offset)
    else:
        sums = chunk.sums(family, params)
    return sums.llf, sums.gradient, sums.hessian


def at_estimate(
    chunk: chunks.DesignChunk, family: Family, params: np.ndarray, vcov_type: str, n_clusters: int
) -> dict:
    result: dict[str, Any] = {"row_ids": [row_span(chunk.row_ids)]}
    if chunk.nobs and vcov_type != "classical":
        cluster = vcov_type == "cluster"
        sums = chunk.sums(
            family,
            params,
            hessian=False,
            meat=not cluster,
            cluster_codes=chunk.clusters if cluster else None,
            n_clusters=n_clusters if cluster else 0,
            need_loglike=False,
        )
        result["meat"] = sums.meat
        result["cluster_sums"] = sums.cluster_score_sums
    if family.uses_t:
        residual = chunk.y - family.predict(params, chunk.X, chunk.offset)
        result["rss"] = float(residual @ residual)
    determined = _determined(chunk, family, params)
    if determined is not None:
        result["determined"] = np.array([determined.sum(), chunk.y[determined].sum()])
    return result


def row_span(ids: np.ndarray) -> np.ndarray | range:
    """A chunk's row ids as ``range(first, last + 1)`` where they are consecutive (every row of
    the chunk in the estimation sample, the usual case), else as they are: a range travels and
    is kept on the client in a few bytes, not 8 a row."""
    if ids.dtype.kind != "i" or not ids.size or int(ids[-1]) - int(ids[0]) != ids.size - 1:
        return ids
    return range(int(ids[0]), int(ids[-1]) + 1) if bool((np.diff(ids) == 1).all()) else ids


def row_index(pieces: list[np.ndarray | range]) -> pd.Index:
    """The fit's row ids from its chunks' :func:`row_span` pieces, in chunk order: a RangeIndex
    where the pieces run on from one to the next (no per-row array on the client), else the
    ids concatenated (int64, as the chunks hold them)."""
    filled = [piece for piece in pieces if len(piece)]
    if filled and all(isinstance(piece, range) for piece in filled):
        if all(a.stop == b.start for a, b in zip(filled[:-1], filled[1:], strict=True)):
            return pd.RangeIndex(filled[0].start, filled[-1].stop)
    arrays = [
        np.arange(piece.start, piece.stop, dtype=np.int64) if isinstance(piece, range) else piece
        for piece in pieces
    ]
    return pd.Index(np.concatenate(arrays))


def _determined(chunk, family, params) -> np.ndarray | None:
    if isinstance(family, OrderedLogit):
        probabilities = family.predict(params, chunk.X, chunk.offset)
        observed = probabilities[np.arange(chunk.nobs), chunk.y.astype(np.intp)]
        return observed > 1 - DETERMINED
    if family.name not in ("logit", "probit"):
        return None
    bound = (
        special.logit(1 - DETERMINED) if family.name == "logit" else special.ndtri(1 - DETERMINED)
    )
    eta = chunk.X @ params
    if chunk.offset is not None:
        eta = eta + chunk.offset
    return np.where(chunk.y == 1, eta > bound, eta < -bound)


# ---- the fit ----


def _sums(family: Family, source, spec, null: bool = False):
    """``newton``'s pass: (llf, gradient, Hessian) at ``params`` summed over the source."""

    def sums(params: np.ndarray):
        return source.map_designs(spec, loglike, family, params, null)

    return sums


def _specification(formula, source, roles) -> tuple[chunks.ModelSpecification, dict]:
    head = source.head(256)
    missing = [column for column in roles.values() if column and column not in head.columns]
    if missing:
        role = next(role for role, column in roles.items() if column == missing[0])
        raise InputError(
            f"the {role.rstrip('s')} column is not in the data",
            column=missing[0],
            expected="an existing column",
        )
    variables, level_variables, stateful = chunks.head_specification(formula, head)
    if stateful:
        raise InputError(
            "a stateful transform (center, scale, ...) cannot be learnt chunk by chunk",
            value=formula,
            expected="plain terms, or engine='memory'",
        )
    scanned = source.map_reduce(
        scan_levels, variables, level_variables, roles, columns=_columns(variables, roles)
    )
    options = dict(variables=variables, level_variables=level_variables, stateful=False, **roles)
    spec = chunks.specification(formula, pd.concat(scanned["levels"]), **options)
    summary = _pass(spec, {"rows_total": scanned["rows"]}, source)
    if summary["usable"] != summary["nobs"] and summary["levels"]:
        # rows left out by a transform (log(0)): the levels are those of the rows that remain
        refixed = chunks.specification(formula, pd.concat(summary["levels"]), **options)
        if refixed.names != spec.names:
            excluded = np.array(sorted(summary["nonfinite"]), dtype=np.int64)
            spec = chunks.with_estimation(refixed, excluded=excluded)
            summary = _pass(spec, summary, source)
    return spec, summary


def chunked_specification(
    formula: str, source, *, cluster: str | None = None
) -> tuple[chunks.ModelSpecification, dict]:
    """The specification of ``formula`` fixed over ``source``'s chunks (no weights or offset;
    ``cluster``: the column whose values the chunks carry) and the summaries of its rows:
    ``fit_source``'s first passes, for other sums over the same designs (``map_designs``),
    such as the spill-over placebo's and bound's (``study/spillover.py``)."""
    return _specification(formula, source, {"weights": None, "cluster": cluster, "offset": None})


def _columns(variables, roles) -> list[str]:
    return list(dict.fromkeys([*variables, *(c for c in roles.values() if c is not None)]))


def _pass(spec, summary, source) -> dict:
    """The summaries of ``spec``'s rows (a pass), with the outcomes of every factor's reference
    cell (``reference_columns``: each factor's indicator positions, as
    ``diagnostics.reference_cells`` finds them among all the specification's columns)."""
    factors = diagnostics.reference_cells(list(spec.names), spec.specs.rhs)
    columns = [positions for _factor, _level, positions in factors]
    found = source.map_designs(spec, summarise, columns)
    return {**found, "rows_total": summary["rows_total"], "reference_columns": columns}


def _drop_collinear(summary, names, keep, notes) -> list[int]:
    """``keep`` less the columns collinear on the summarised rows (Stata's order)."""
    gram = summary["gram"][np.ix_(keep, keep)]
    kept_names = [names[j] for j in keep]
    dropped = diagnostics.collinear_columns(np.zeros((0, len(keep))), kept_names, gram=gram)
    notes.extend(f"{name} omitted because of collinearity" for name in dropped)
    return [j for j in keep if names[j] not in dropped]


def _drop_reference_cells(spec, summary, source, names, keep, labels, notes):
    """A factor's reference level whose rows all have one outcome of ``labels`` leaves the
    sample, as in memory (``diagnostics.reference_separation``): factor by factor, a pass after
    each drop; then the collinearity check on the rows that remain. Returns (spec, summary,
    keep, dropped)."""
    factors = diagnostics.reference_cells([names[j] for j in keep], spec.specs.rhs)
    columns = [[keep[j] for j in positions] for _factor, _level, positions in factors]

    def reference_outcomes() -> tuple:  # from the summaries where they hold these cells
        if columns == summary.get("reference_columns") and "reference" in summary:
            return summary["reference"]
        return source.map_designs(spec, reference_counts, columns) if columns else ()

    counts = reference_outcomes()
    dropped = False
    for i, (factor, level, _positions) in enumerate(factors):
        found = counts[i] if counts else {}
        note = diagnostics.reference_note(factor, level, found, summary["nobs"], labels)
        if note is None:
            continue
        notes.append(note)
        spec = chunks.with_estimation(spec, drop_cells=(*spec.drop_cells, (tuple(columns[i]), 0.0)))
        summary = _pass(spec, summary, source)
        dropped = True
        if i + 1 < len(factors):
            counts = reference_outcomes()
    if dropped:
        keep = _drop_collinear(summary, names, keep, notes)
    return spec, summary, keep, dropped


def _drop_separated(spec, summary, source, names, keep, notes, cells=None, labels=None):
    """Stata's rule, as in memory (``diagnostics.indicator_separation``): an indicator whose 1
    (or 0) cell holds only successes or only failures is omitted and its rows leave the sample,
    one cell at a time (a pass each), until none is left. ``cells(spec, summary)``: the
    indicators' (success, failure) sums and the totals (default: the binary outcome's, from the
    summaries). Returns (spec, summary, keep, omitted)."""
    omitted: list[str] = []
    labels = labels or {"success": "success", "failure": "failure"}
    if cells is None:

        def cells(_spec, summary):
            wy = float(summary["wy"])
            return summary["ones"], (wy, float(summary["wsum"]) - wy)

    while True:
        kept_names = [names[j] for j in keep]
        ones, totals = cells(spec, summary)
        cell = {
            "indicator": (summary["not_indicator"] == 0)[keep],
            "ones_success": ones[keep, 0],
            "ones_failure": ones[keep, 1],
            "total_success": float(totals[0]),
            "total_failure": float(totals[1]),
        }
        found = diagnostics.separated_cell(cell, kept_names, omitted, labels)
        if found is None:
            break
        j, value, relation, result = found
        name = kept_names[j]
        spec = chunks.with_estimation(spec, drop_cells=(*spec.drop_cells, (keep[j], float(value))))
        before = summary["nobs"]
        summary = _pass(spec, summary, source)
        notes.append(
            f"{name} {relation} predicts {labels[result]} perfectly; "
            f"{name} omitted and {before - summary['nobs']} obs not used"
        )
        omitted.append(name)
    return spec, summary, [j for j in keep if names[j] not in omitted], omitted


def _check_binary(spec, summary) -> None:
    outcomes = np.array(sorted(summary["outcomes"]), dtype=np.float64)
    diagnostics.check_binary_outcome(
        outcomes, pd.Index(["(streamed)"] * outcomes.size), spec.outcome
    )


def _binary_separation(spec, summary, source, names, keep, notes):
    """Logit and probit, as ``fitting.prepare_design``: reference cells, then indicator cells,
    each followed by the collinearity check on the rows that remain."""
    spec, summary, keep, dropped = _drop_reference_cells(
        spec, summary, source, names, keep, {0.0: "failure", 1.0: "success"}, notes
    )
    if dropped:
        _check_binary(spec, summary)
    spec, summary, keep, omitted = _drop_separated(spec, summary, source, names, keep, notes)
    if omitted:
        _check_binary(spec, summary)
        keep = _drop_collinear(summary, names, keep, notes)
    return spec, summary, keep


def _ordinal_separation(spec, summary, source, names, keep, notes):
    """The ordered logit, as ``fitting._ordinal_separation``: a reference cell wholly in the
    lowest or the highest category, then indicator cells wholly there (y > lowest failing, then
    y = highest succeeding), rows and terms dropped as for the binary models."""
    values = np.array(sorted(summary["outcomes"]), dtype=np.float64)
    lowest, highest = values[0], values[-1]
    outcome = spec.outcome
    low, high = f"{outcome} = {lowest:g}", f"{outcome} = {highest:g}"
    spec, summary, keep, _dropped = _drop_reference_cells(
        spec, summary, source, names, keep, {lowest: low, highest: high}, notes
    )
    for key, labels in (("above", {"failure": low}), ("top", {"success": high})):

        def cells(spec, _summary, key=key):
            found = source.map_designs(spec, ordinal_cells, lowest, highest)
            return found[key], found[f"{key}_total"]

        spec, summary, keep, _omitted = _drop_separated(
            spec, summary, source, names, keep, notes, cells, labels
        )
    if len(summary["outcomes"]) < 2:
        raise SeparationError(f"outcome {outcome!r} does not vary once perfectly predicted rows go")
    return spec, summary, keep


def _prepare(
    spec, summary, family: Family, source
) -> tuple[chunks.ModelSpecification, Family, list, dict]:
    """Stata's checks over the summaries: outcome, collinearity, perfect prediction (logit,
    probit and ordered logit: rows and terms dropped as in memory). Returns the specification
    to estimate, the family, the notes and the summaries of the rows that remain."""
    notes: list[str] = []
    n_missing = summary["rows_total"] - summary["nobs"]
    if n_missing:
        notes.append(
            f"{n_missing} observations deleted (missing values, non-finite transforms or zero "
            "weight)"
        )
    values = np.array(sorted(summary["outcomes"]), dtype=np.float64)
    if summary["nobs"] == 0:
        raise TooFewError(f"no observations left to estimate the model of {spec.outcome!r}")
    if family.binary:
        diagnostics.check_binary_outcome(
            values, pd.Index(["(streamed)"] * values.size), spec.outcome
        )
    names = list(spec.names)
    keep = _drop_collinear(summary, names, list(range(len(names))), notes)
    if family.name in ("logit", "probit"):
        spec, summary, keep = _binary_separation(spec, summary, source, names, keep, notes)
    ordinal = None
    if isinstance(family, OrderedLogit):
        if values.size < 2:
            raise NoVariationError(
                f"outcome {spec.outcome!r} does not vary in the estimation sample"
            )
        spec, summary, keep = _ordinal_separation(spec, summary, source, names, keep, notes)
        ordinal = np.array(sorted(summary["outcomes"]), dtype=np.float64)
        family = family.with_categories(tuple(ordinal.tolist()))
        keep = [j for j in keep if names[j] != "Intercept"]
    if not keep and not isinstance(family, OrderedLogit):
        raise EstimationError("no regressors left to estimate")
    labels = None
    if spec.cluster is not None:
        labels = np.array(sorted(summary["clusters"]))
    spec = chunks.with_estimation(
        spec, keep_columns=keep, ordinal_values=ordinal, cluster_labels=labels
    )
    return spec, family, notes, summary


def _start(family: Family, spec, summary) -> np.ndarray:
    names = spec.estimated_names
    if isinstance(family, OrderedLogit):
        shares = np.array([summary["outcomes"][v] for v in sorted(summary["outcomes"])])
        cumulative = np.cumsum(shares)[:-1] / shares.sum()
        return np.concatenate([np.zeros(len(names)), special.logit(cumulative)])
    start = np.zeros(len(names))
    if family.name in ("logit", "probit") and "Intercept" in names:
        share = float(np.clip(summary["wy"] / summary["wsum"], 1e-6, 1 - 1e-6))
        link = special.logit if family.name == "logit" else special.ndtri
        start[names.index("Intercept")] = link(share)
    return start


def _null(family, spec, summary, source, tol, max_iter) -> tuple[float, float]:
    total = summary["wsum"]
    intercept = "Intercept" in spec.estimated_names or isinstance(family, OrderedLogit)
    if spec.offset is None and intercept:
        if family.name in ("logit", "probit"):
            share = summary["wy"] / total
            llf = float(total * (share * np.log(share) + (1 - share) * np.log1p(-share)))
            return llf, -2.0 * llf
        if isinstance(family, OrderedLogit):
            shares = np.array([summary["outcomes"][v] for v in sorted(summary["outcomes"])])
            shares = shares[shares > 0] / total
            llf = float(total * (shares * np.log(shares)).sum())
            return llf, -2.0 * llf
        if family.uses_t:
            rss = summary["wyy"] - summary["wy"] ** 2 / total
            return -0.5 * rss, rss
    columns = 1 if intercept and not isinstance(family, OrderedLogit) else 0
    if isinstance(family, OrderedLogit):
        start = _start(family, chunks.with_estimation(spec, keep_columns=[]), summary)
    else:
        start = np.zeros(columns)
        if columns and family.name in ("logit", "probit"):
            share = float(np.clip(summary["wy"] / total, 1e-6, 1 - 1e-6))
            start[0] = (special.logit if family.name == "logit" else special.ndtri)(share)
    sums = _sums(family, source, spec, null=True)
    if not intercept:
        llf = sums(start)[0]
        return llf, -2.0 * llf
    result = newton(family, [], start, tol=tol, max_iter=max_iter, sums=sums)
    if not result.converged:
        raise NonConvergenceError("the constant-only model did not converge")
    return result.llf, -2.0 * result.llf


def fit_source(
    formula: str,
    source,
    family: str = "logit",
    vcov="classical",
    weights: str | None = None,
    *,
    offset: str | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> Fit:
    """``fit`` over a chunk source (``sources.py``, ``dask_engine.py``): same arguments, except
    that an offset is a column name."""
    vcov_type, cluster = parse_vcov(vcov)
    family_model = get_family(family)
    if weights is not None and vcov_type == "classical":
        raise InputError(
            "sampling weights (Stata's pweight) need robust or cluster standard errors",
            column=weights,
            expected="vcov='robust' or vcov={'cluster': '<column>'}",
        )
    if offset is not None and not isinstance(offset, str):
        raise InputError(
            "a streamed or Dask fit takes its offset from a column",
            expected="offset='<column>'",
        )
    roles = {"weights": weights, "cluster": cluster, "offset": offset}
    spec, summary = _specification(formula, source, roles)
    n_missing = int(summary["rows_total"] - summary["nobs"])
    spec, family_model, notes, summary = _prepare(spec, summary, family_model, source)
    names = spec.estimated_names
    k = family_model.n_params(len(names))
    nobs = int(summary["nobs"])
    if nobs <= k:
        raise TooFewError(
            f"{nobs} observations are too few for {k} parameters in the model of {spec.outcome!r}"
        )
    start = _start(family_model, spec, summary)
    sums = _sums(family_model, source, spec)
    result = newton(family_model, [], start, tol=tol, max_iter=max_iter, sums=sums)
    if not result.converged:
        raise NonConvergenceError(
            f"the {family_model.name} model of {spec.outcome!r} did not converge after "
            f"{result.iterations} iterations ({result.message}); estimates are not reported "
            "(check for separation, scaling or collinearity, or raise max_iter)"
        )
    params = result.params
    n_clusters = None if spec.cluster_labels is None else len(spec.cluster_labels)
    final = source.map_designs(spec, at_estimate, family_model, params, vcov_type, n_clusters or 0)
    determined = final.get("determined")
    if determined is not None and determined[0] > 0:
        if isinstance(family_model, OrderedLogit):
            notes.append(
                f"{int(determined[0])} observations completely determined: some coefficients "
                "may be infinite (separation); check the cells of the terms with huge estimates"
            )
        else:
            successes = int(determined[1])
            notes.append(
                f"{int(determined[0]) - successes} failures and {successes} successes completely "
                "determined"
            )
    return finish_fit(
        family_model,
        result,
        list(names),
        SandwichPieces(meat=final.get("meat"), cluster_score_sums=final.get("cluster_sums")),
        vcov_type=vcov_type,
        nobs=nobs,
        weight_total=float(summary["wsum"]),
        residual_ss=float(final["rss"]) if family_model.uses_t else None,
        null=_null(family_model, spec, summary, source, tol, max_iter),
        n_clusters=n_clusters,
        cluster_name=cluster,
        notes=notes,
        formula=formula,
        outcome=spec.outcome,
        row_ids=row_index(final["row_ids"]),
        model_spec=spec.specs.rhs,
        outcome_spec=spec.specs.lhs,
        weights=weights,
        offset=offset,
        n_dropped_missing=n_missing,
    )
