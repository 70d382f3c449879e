r"""Multiplicity control for a family of hypotheses: Holm, and the Romano-Wolf step-down.

Holm (1979): with raw p-values sorted p_(1) <= ... <= p_(m), the adjusted p-value of the j-th is
max_{i <= j} min(1, (m - i + 1) p_(i)). It controls the family-wise error rate under any
dependence, and ignores it.

Romano and Wolf (2005, Econometrica 73(4); adjusted p-values as in Romano and Wolf 2016,
Statistics and Probability Letters 113) use the joint bootstrap distribution of the statistics,
so correlated hypotheses cost less than Holm. Here the bootstrap is the wild score bootstrap of
``wild_bootstrap`` (any cluster level: regions, cells, or firms as their own clusters), with

* the **same weight vectors** for every hypothesis (draw b is one vector v_b of cluster weights,
  applied to each hypothesis's cluster scores),
* **each hypothesis's own null imposed** (one restricted fit per hypothesis), so T*_{h,b} is a
  draw from hypothesis h's null distribution whether or not the other nulls hold, and
* **signed statistics for one-sided hypotheses**: s_h = t_h for "greater" (H1: b > c), -t_h for
  "less", |t_h| for "two-sided", and the same transformation of every draw.

Step-down (Romano-Wolf 2016, algorithm 4.1 with null-imposed draws): order the hypotheses by
s_h, largest first: s_(1) >= ... >= s_(m). For j = 1..m let M_{j,b} = max over the hypotheses
ranked j..m of s*_{h,b}, and p~_(j) = #{b : M_{j,b} >= s_(j)} / B (the inclusive tie rule of
``wild_bootstrap``, to a relative 1e-10). Adjusted p_(j) = max_{i <= j} p~_(i). The first p~ is
the single-step max-t p-value; the later steps drop the hypotheses already ranked higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from buzzpipe.errors import InputError

if TYPE_CHECKING:
    from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap

ALTERNATIVES = ("two-sided", "greater", "less")


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def signed(values: np.ndarray, alternative: str) -> np.ndarray:
    """The statistic that is large against the null: t, -t or |t|."""
    if alternative == "greater":
        return np.asarray(values, dtype=float)
    if alternative == "less":
        return -np.asarray(values, dtype=float)
    if alternative == "two-sided":
        return np.abs(values)
    raise InputError("unknown alternative", value=alternative, expected=", ".join(ALTERNATIVES))


def _at_least(draws: np.ndarray, actual) -> np.ndarray:
    """Draws at least as extreme as ``actual`` (inclusive ties to a relative 1e-10)."""
    # imported here: ``holm`` is read where the command line parses its options (the study's
    # verdicts), and the wild bootstrap's module brings numba and scipy (0.5-0.7 s of CPU)
    from buzzpipe.estimate.wild_bootstrap import TIE_TOLERANCE

    actual = np.asarray(actual, dtype=float)
    return draws >= actual - TIE_TOLERANCE * np.abs(actual)


def romano_wolf(
    statistics: Sequence[float], distributions: np.ndarray, alternatives: Sequence[str]
) -> dict:
    """Romano-Wolf step-down adjusted p-values (module docstring), in the input order.

    ``statistics`` are the m actual t statistics, ``distributions`` m x B their bootstrap
    draws under each hypothesis's own null with the same weight vectors, ``alternatives`` one
    of "two-sided", "greater", "less" per hypothesis. Returns raw (one hypothesis alone) and
    adjusted p-values.
    """
    t = np.asarray(statistics, dtype=float)
    draws = np.asarray(distributions, dtype=float)
    if draws.ndim != 2 or draws.shape[0] != len(t) or len(alternatives) != len(t):
        raise InputError(
            "one statistic, one row of draws and one alternative per hypothesis",
            value=f"{len(t)} statistics, draws {draws.shape}, {len(alternatives)} alternatives",
        )
    s = np.array([signed(t[h], a) for h, a in enumerate(alternatives)])
    s_star = np.vstack([signed(draws[h], a) for h, a in enumerate(alternatives)])
    s_star = np.where(np.isnan(s_star), -np.inf, s_star)  # a failed draw never counts
    raw = _at_least(s_star, s[:, None]).mean(axis=1)
    order = np.argsort(-s, kind="stable")
    # M_{j,b}: maximum over the hypotheses ranked j..m, from the bottom up
    suffix_max = np.maximum.accumulate(s_star[order][::-1], axis=0)[::-1]
    stepped = _at_least(suffix_max, s[order][:, None]).mean(axis=1)
    adjusted = np.empty(len(t))
    adjusted[order] = np.maximum.accumulate(stepped)
    return {"raw": raw, "adjusted": adjusted, "order": order}


@dataclass
class FamilyTest:
    """A family of hypotheses tested together: raw, Holm and Romano-Wolf p-values."""

    labels: list[str]
    alternatives: list[str]
    statistics: np.ndarray
    raw: np.ndarray  # each hypothesis alone (bootstrap, its own alternative)
    holm: np.ndarray
    romano_wolf: np.ndarray
    weight_type: str
    n_draws: int
    enumerated: bool
    n_clusters: int
    seed: int
    distributions: np.ndarray = field(repr=False)

    def as_records(self) -> list[dict]:
        """One JSON-ready record per hypothesis."""
        return [
            {
                "hypothesis": label,
                "alternative": alternative,
                "statistic": float(self.statistics[h]),
                "p_raw": float(self.raw[h]),
                "p_holm": float(self.holm[h]),
                "p_romano_wolf": float(self.romano_wolf[h]),
            }
            for h, (label, alternative) in enumerate(
                zip(self.labels, self.alternatives, strict=True)
            )
        ]


def family_test(
    hypotheses: Sequence[tuple[WildScoreBootstrap, str | int, float, str]],
    labels: Sequence[str] | None = None,
) -> FamilyTest:
    """Test (bootstrap, term, null value, alternative) hypotheses as one family.

    The bootstraps may be of different models (outcomes, specifications) but must share the
    clusters and the weight vectors (same labels, weight type, draws and seed), so that draw b
    is one vector v_b for every hypothesis. Each test imposes its own null.
    """
    if not hypotheses:
        raise InputError("a family needs at least one hypothesis")
    first = hypotheses[0][0]
    for bootstrap, *_ in hypotheses[1:]:
        same = (
            bootstrap.weight_type == first.weight_type
            and bootstrap.n_draws == first.n_draws
            and bootstrap.enumerated == first.enumerated
            and bootstrap.seed == first.seed
            and np.array_equal(bootstrap.cluster_labels, first.cluster_labels)
            and np.array_equal(bootstrap.draws, first.draws)
        )
        if not same:
            raise InputError(
                "every hypothesis of a family must use the same clusters and weight vectors",
                expected="bootstraps with the same clusters, weight type, draws and seed",
            )
    tests = [bootstrap.test(term, null) for bootstrap, term, null, _ in hypotheses]
    alternatives = [alternative for *_, alternative in hypotheses]
    statistics = np.array([test.statistic for test in tests])
    distributions = np.vstack([test.distribution for test in tests])
    stepped = romano_wolf(statistics, distributions, alternatives)
    return FamilyTest(
        labels=list(labels) if labels is not None else [test.term for test in tests],
        alternatives=alternatives,
        statistics=statistics,
        raw=stepped["raw"],
        holm=holm(stepped["raw"]),
        romano_wolf=stepped["adjusted"],
        weight_type=first.weight_type,
        n_draws=first.n_draws,
        enumerated=first.enumerated,
        n_clusters=first.n_clusters,
        seed=first.seed,
        distributions=distributions,
    )
