"""Monte Carlo of inference with few clusters: what each test of a logit coefficient is worth.

Fixed design (docs/few_clusters.md): N = 1,604 firms in G clusters. For G = 5 the clusters are
the five city-regions with the ``norway2010`` preset's shares; for G = 10, 30, 100 each city-region
is split into G/5 equal parts, so the inequality of sizes is kept. For firm i in cluster g,

    x_i = sqrt(rho_x) a_g + sqrt(1 - rho_x) e_i          (international breadth, standardised)
    z_i ~ N(0, 1)                                         (a firm-level control, e.g. log size)
    P(y_i = 1) = logistic(beta0 + beta x_i + gamma z_i + sigma_u u_g)

with a_g, e_i, u_g independent N(0, 1). Under H0 (beta = 0) y is independent of x, so the
population logit coefficient of x is 0, while x and the outcome shocks are both correlated within
clusters: the scores x_i (y_i - p_i) are correlated within clusters (their intra-cluster
correlation is estimated and printed). Each replication fits the logit of y on (1, x, z) and tests
beta = 0 with the cluster-robust Wald test (Stata: G/(G-1), normal reference), the firm-level
robust Wald test (N/(N-1)), and the wild cluster score bootstrap with Rademacher and Webb weights
(every draw enumerated when 2^G or 6^G is at most B). A 95% interval (Wald, or the bootstrap's
test inversion {c : p(c) > 0.05}) covers the true value exactly when its test does not reject
there, so coverage is one minus the size; ``check_duality`` confirms this on a few replications.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from buzzpipe import __version__
from buzzpipe.estimate import random_weights
from buzzpipe.estimate.families import binary_terms
from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap, enumerate_draws

# synth/presets/norway2010.toml, survey.region_shares (assumed there: proportional to population)
NORWAY2010_REGION_SHARES = (0.54, 0.17, 0.125, 0.105, 0.06)
NORWAY2010_FIRMS = 1604
TESTS = ("cluster_wald", "wild_rademacher", "wild_webb", "firm_robust")
Z_CRITICAL = 1.959963984540054


@dataclass(frozen=True)
class MonteCarloDesign:
    """The fixed data-generating process (see the module docstring)."""

    firms: int = NORWAY2010_FIRMS
    region_shares: tuple[float, ...] = NORWAY2010_REGION_SHARES
    rho_x: float = 0.5  # intra-cluster correlation of the regressor
    sigma_u: float = 0.5  # s.d. of the cluster shock on the logit scale (latent ICC 0.07)
    beta0: float = -0.1
    beta: float = 0.0  # the true slope
    null_value: float = 0.0  # the value tested: size when it equals beta, power otherwise
    gamma: float = 0.3
    draws: int = 999  # B for the wild bootstrap when not enumerating
    alpha: float = 0.05


def cluster_sizes(n_clusters: int, design: MonteCarloDesign) -> np.ndarray:
    """Firms per cluster: city-region sizes from the preset shares, each split into G/5 parts."""
    regions = len(design.region_shares)
    if n_clusters % regions:
        raise ValueError(f"G must be a multiple of {regions}")
    exact = np.asarray(design.region_shares) * design.firms
    region_sizes = np.floor(exact).astype(int)
    short = design.firms - region_sizes.sum()  # largest remainders get the rounding
    region_sizes[np.argsort(region_sizes - exact, kind="stable")[:short]] += 1
    parts = n_clusters // regions
    sizes = [
        size // parts + (1 if part < size % parts else 0)
        for size in region_sizes
        for part in range(parts)
    ]
    return np.asarray(sizes)


def simulate_sample(rng: np.random.Generator, clusters: np.ndarray, design: MonteCarloDesign):
    """One sample (X = [1, x, z], y) of the design."""
    n_clusters = int(clusters.max()) + 1
    n = len(clusters)
    x = math.sqrt(design.rho_x) * rng.standard_normal(n_clusters)[clusters] + math.sqrt(
        1 - design.rho_x
    ) * rng.standard_normal(n)
    z = rng.standard_normal(n)
    shock = design.sigma_u * rng.standard_normal(n_clusters)[clusters]
    index = design.beta0 + design.beta * x + design.gamma * z + shock
    y = (rng.random(n) < 1 / (1 + np.exp(-index))).astype(float)
    return np.column_stack([np.ones(n), x, z]), y


def wald_standard_errors(X, y, clusters, params) -> tuple[float, float]:
    """S.e. of the slope on column 1: cluster-robust (G/(G-1)) and firm-level robust (N/(N-1))."""
    _, derivative, curvature = binary_terms(X @ params, y, "logit")
    bread = np.linalg.inv((X * curvature[:, None]).T @ X)
    scores = X * derivative[:, None]
    n_clusters = int(clusters.max()) + 1
    sums = np.zeros((n_clusters, X.shape[1]))
    np.add.at(sums, clusters, scores)
    n = len(y)
    cluster_vcov = n_clusters / (n_clusters - 1) * bread @ (sums.T @ sums) @ bread
    robust_vcov = n / (n - 1) * bread @ (scores.T @ scores) @ bread
    return math.sqrt(cluster_vcov[1, 1]), math.sqrt(robust_vcov[1, 1])


def one_replication(seed_sequence: np.random.SeedSequence, clusters, design: MonteCarloDesign):
    """Rejections (True = reject slope = design.null_value at alpha) of the four tests."""
    rng = np.random.default_rng(seed_sequence)
    X, y = simulate_sample(rng, clusters, design)
    draw_seed = int(seed_sequence.generate_state(1, np.uint64)[0])
    bootstrap = WildScoreBootstrap(
        X, y, clusters, weight_type="webb", draws=design.draws, seed=draw_seed
    )
    cluster_se, robust_se = wald_standard_errors(X, y, clusters, bootstrap.estimate)
    distance = abs(bootstrap.estimate[1] - design.null_value)
    restricted = bootstrap.restricted_fit(1, design.null_value)
    sums = bootstrap.partialled_cluster_scores(1, restricted)
    statistic = float(bootstrap.statistics(sums, np.ones((bootstrap.n_clusters, 1)))[0])
    webb_p = bootstrap.bootstrap_p_value(statistic, bootstrap.statistics(sums, bootstrap.draws))
    n_clusters = bootstrap.n_clusters
    if 2.0**n_clusters <= design.draws:
        rademacher = enumerate_draws(n_clusters, "rademacher")
    else:
        rademacher = random_weights.rademacher_weights(
            draw_seed, bootstrap.cluster_labels, design.draws
        )
    rademacher_p = bootstrap.bootstrap_p_value(statistic, bootstrap.statistics(sums, rademacher))
    return {
        "cluster_wald": distance / cluster_se > Z_CRITICAL,
        "wild_rademacher": rademacher_p <= design.alpha,
        "wild_webb": webb_p <= design.alpha,
        "firm_robust": distance / robust_se > Z_CRITICAL,
    }


@dataclass
class CellResult:
    """Rejection rates of one G (one Monte Carlo cell)."""

    n_clusters: int
    replications: int
    beta: float
    null_value: float
    rejection: dict[str, float]
    mc_se: dict[str, float]
    seconds: float

    def coverage(self) -> dict[str, float]:
        """Coverage of the 95% intervals: one minus the rejection rate at the true value."""
        if self.beta != self.null_value:
            return {}
        return {test: 1.0 - rate for test, rate in self.rejection.items()}


def run_cell(
    n_clusters: int,
    replications: int,
    seed: int,
    design: MonteCarloDesign | None = None,
    progress: bool = False,
) -> CellResult:
    """Rejection rates of the four tests over ``replications`` samples with G = n_clusters."""
    design = design or MonteCarloDesign()
    sizes = cluster_sizes(n_clusters, design)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    children = np.random.SeedSequence([seed, n_clusters]).spawn(replications)
    iterator = children
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(children, desc=f"G = {n_clusters}", unit="rep")
    start = time.perf_counter()
    counts = dict.fromkeys(TESTS, 0)
    for child in iterator:
        for test, rejected in one_replication(child, clusters, design).items():
            counts[test] += bool(rejected)
    rates = {test: counts[test] / replications for test in TESTS}
    errors = {test: math.sqrt(rate * (1 - rate) / replications) for test, rate in rates.items()}
    return CellResult(
        n_clusters,
        replications,
        design.beta,
        design.null_value,
        rates,
        errors,
        time.perf_counter() - start,
    )


def intracluster_correlations(
    n_clusters: int, seed: int, design: MonteCarloDesign | None = None, samples: int = 50
) -> dict[str, float]:
    """Pooled intra-cluster correlations of x, of y and of the slope's score x_i (y_i - ybar).

    Deviations are from the sample mean, which biases each by about -1/G: use a large G.
    """
    design = design or MonteCarloDesign()
    clusters = np.repeat(np.arange(n_clusters), cluster_sizes(n_clusters, design))
    sizes = np.bincount(clusters)
    pairs = float((sizes * (sizes - 1)).sum())
    rng = np.random.default_rng(seed)
    totals = {"x": [0.0, 0.0], "y": [0.0, 0.0], "score": [0.0, 0.0]}
    for _ in range(samples):
        X, y = simulate_sample(rng, clusters, design)
        x = X[:, 1] - X[:, 1].mean()
        outcome = y - y.mean()
        for name, value in (("x", x), ("y", outcome), ("score", X[:, 1] * outcome)):
            value = value - value.mean()
            sums = np.bincount(clusters, weights=value)
            squares = np.bincount(clusters, weights=value**2)
            totals[name][0] += (sums**2 - squares).sum() / pairs
            totals[name][1] += squares.sum() / len(value)
    return {name: between / variance for name, (between, variance) in totals.items()}


def check_duality(n_clusters: int, replications: int, seed: int, design=None) -> int:
    """How many replications' bootstrap confidence sets disagree with their test at the truth."""
    design = design or MonteCarloDesign()
    clusters = np.repeat(np.arange(n_clusters), cluster_sizes(n_clusters, design))
    disagreements = 0
    for child in np.random.SeedSequence([seed, n_clusters, 1]).spawn(replications):
        X, y = simulate_sample(np.random.default_rng(child), clusters, design)
        bootstrap = WildScoreBootstrap(X, y, clusters, weight_type="webb", draws=design.draws)
        covered = any(
            low <= design.beta <= high
            for low, high in bootstrap.confidence_set(1, design.alpha).intervals
        )
        accepted = bootstrap.test(1, design.beta).p_value > design.alpha
        disagreements += covered != accepted
    return disagreements


def table(cells: Sequence[CellResult]) -> str:
    """Markdown table: rejection rate (Monte Carlo s.e.) and coverage per test and G."""
    header = "| G | replications | " + " | ".join(TESTS) + " |"
    lines = [header, "|" + "---|" * (len(TESTS) + 2)]
    for cell in cells:
        coverage = cell.coverage()
        entries = [
            f"{cell.rejection[t]:.4f} ({cell.mc_se[t]:.4f})"
            + (f"; cov {coverage[t]:.3f}" if coverage else "")
            for t in TESTS
        ]
        lines.append(f"| {cell.n_clusters} | {cell.replications} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def as_records(cells: Sequence[CellResult]) -> list[dict]:
    return [asdict(cell) | {"coverage": cell.coverage()} for cell in cells]


def run_study(
    replications: int = 5000,
    clusters: Sequence[int] = (5, 10, 30, 100),
    beta: float = 0.0,
    seed: int = 20110601,
    report=print,
    null_value: float = 0.0,
    balanced: bool = False,
) -> dict:
    """The whole Monte Carlo (BLAS pinned to one thread): correlations, then one cell per G.

    ``balanced`` replaces the preset's region shares by equal ones (a reference design).
    """
    from threadpoolctl import threadpool_limits

    design = MonteCarloDesign(beta=beta, null_value=null_value)
    if balanced:
        design = replace(design, region_shares=(0.2,) * 5)
    with threadpool_limits(1):
        correlations = intracluster_correlations(100, seed, design)
        report(
            "intra-cluster correlations (G = 100): "
            + ", ".join(f"{name} {value:.3f}" for name, value in correlations.items())
        )
        cells = []
        for n_clusters in clusters:
            cell = run_cell(n_clusters, replications, seed, design)
            cells.append(cell)
            report(
                f"G = {n_clusters}: "
                + ", ".join(
                    f"{test} {cell.rejection[test]:.4f} ({cell.mc_se[test]:.4f})" for test in TESTS
                )
                + f"  [{cell.seconds:.0f} s]"
            )
    what = "coverage = 1 - rate" if beta == null_value else "power: no coverage"
    report(
        f"\ntrue slope {beta}, tested {null_value}: rejection rate at 5% (Monte Carlo s.e.); "
        + what
    )
    report(table(cells))
    return {
        "design": asdict(design) | {"region_shares": list(design.region_shares)},
        "seed": seed,
        "version": __version__,
        "intracluster_correlations": correlations,
        "cells": as_records(cells),
    }


@dataclass
class WaldSizeCheck:
    """Size of the cluster-robust Wald test alone (no bootstrap), to find where it goes wrong."""

    n_clusters: int
    replications: int
    rejection_normal: float  # Stata's reference for logit: N(0, 1)
    rejection_t: float  # the t(G-1) reference (Stata's for OLS), same statistics
    mc_se: float  # of rejection_normal
    effective_clusters: float  # G* of Carter, Schnepel and Steigerwald (2017)
    largest_variance_share: float  # the largest cluster's share of the score variance

    def line(self) -> str:
        return (
            f"G = {self.n_clusters}: Wald size {self.rejection_normal:.4f} ({self.mc_se:.4f}) "
            f"with the normal reference, {self.rejection_t:.4f} with t(G-1); effective number "
            f"of clusters G* = {self.effective_clusters:.1f}; the largest cluster carries "
            f"{self.largest_variance_share:.1%} of the score variance"
        )


def wald_size_check(
    n_clusters: int, replications: int, seed: int, design: MonteCarloDesign | None = None
) -> WaldSizeCheck:
    """The cluster-robust Wald test's size over the very samples of :func:`run_cell`.

    Same seeds, so the normal-reference rate equals run_cell's ``cluster_wald``. Beside it: the
    t(G-1) reference, and the effective number of clusters G* = (sum_g gamma_g)^2 / sum_g
    gamma_g^2 (Carter, Schnepel and Steigerwald 2017, G / (1 + Gamma) with Gamma the squared
    coefficient of variation of the gamma_g), where gamma_g = E[S_g^2] is cluster g's
    contribution to the variance of the slope's partialled score, averaged over the samples.
    Equal gamma_g give G* = G; a few dominant clusters make the test behave as with fewer.
    """
    from scipy import stats as scipy_stats

    from buzzpipe.estimate.batched_newton import newton_batch

    design = design or MonteCarloDesign()
    clusters = np.repeat(np.arange(n_clusters), cluster_sizes(n_clusters, design))
    t_critical = float(scipy_stats.t.ppf(1 - design.alpha / 2, n_clusters - 1))
    rejected_normal = rejected_t = 0
    contributions = np.zeros(n_clusters)
    for child in np.random.SeedSequence([seed, n_clusters]).spawn(replications):
        X, y = simulate_sample(np.random.default_rng(child), clusters, design)
        params = newton_batch(X, y, np.ones(len(y)), family="logit").params[:, 0]
        cluster_se, _ = wald_standard_errors(X, y, clusters, params)
        z_value = abs(params[1] - design.null_value) / cluster_se
        rejected_normal += z_value > Z_CRITICAL
        rejected_t += z_value > t_critical
        _, derivative, curvature = binary_terms(X @ params, y, "logit")
        direction = np.linalg.solve((X * curvature[:, None]).T @ X, np.eye(X.shape[1])[:, 1])
        sums = np.bincount(clusters, weights=derivative * (X @ direction), minlength=n_clusters)
        contributions += sums**2 / replications
    rate = rejected_normal / replications
    return WaldSizeCheck(
        n_clusters,
        replications,
        rate,
        rejected_t / replications,
        math.sqrt(rate * (1 - rate) / replications),
        float(contributions.sum() ** 2 / (contributions**2).sum()),
        float(contributions.max() / contributions.sum()),
    )


def wald_diagnostics(replications: int = 5000, seed: int = 20110601, report=print) -> list[dict]:
    """Why the cluster-robust Wald test misses 5% at G = 100: the contrasts of docs/few_clusters.md.

    The preset's design beside equal clusters, no cluster shock in the outcome, a regressor
    without a regional component, equal clusters as many as the preset's effective number, and
    more clusters of the same inequality (BLAS pinned to one thread).
    """
    from threadpoolctl import threadpool_limits

    base = MonteCarloDesign()
    equal = replace(base, region_shares=(0.2,) * 5)
    variants = [
        ("preset sizes", base, 100),
        ("equal sizes", equal, 100),
        ("preset sizes, no cluster shock in y (sigma_u = 0)", replace(base, sigma_u=0.0), 100),
        ("preset sizes, x without a regional component (rho_x = 0)", replace(base, rho_x=0.0), 100),
        ("equal sizes", equal, 45),
        ("equal sizes", equal, 40),
        ("equal sizes", equal, 30),
        ("preset sizes", base, 30),
        ("preset sizes", base, 200),
        ("preset sizes", base, 400),
        ("preset sizes, four times the firms", replace(base, firms=4 * base.firms), 100),
    ]
    records = []
    with threadpool_limits(1):
        for name, design, n_clusters in variants:
            check = wald_size_check(n_clusters, replications, seed, design)
            report(f"{name}: {check.line()}")
            records.append({"design": name} | asdict(check))
    return records
