r"""Few-clusters Monte Carlo in the study's own design: region fixed effects, unequal regions.

``few_clusters_monte_carlo`` measures the tests of a logit slope in a model without region fixed
effects. The study's models have them (and industry fixed effects), and the survey's regions are
very unequal. This Monte Carlo uses that design (docs/few_clusters.md, "In the study's design"):

* N = 1,604 firms in five regions of 874, 285, 190, 181 and 74 firms (G = 5), or each region
  split into six near-equal parts, each its own region (G = 30: the same inequality). Six
  industries with the preset's shares, allocated within each region by largest remainders; the
  design (who is in which region and industry) is fixed.
* x_i = sqrt(0.5) a_g + sqrt(0.25) c_gk + sqrt(0.25) e_i (international breadth, standardised:
  a region component, a region x industry cell component and a firm one), z_i ~ N(0, 1).
* P(y_i = 1) = logistic(-0.1 + b_g x_i + 0.3 z_i + u_g + w_gk), with, by process:
  (a) independent firms: b_g = beta, u = w = 0;
  (b) a region-level shock in levels, u_g ~ N(0, 0.5^2), absorbed by the region fixed effects;
  (c1) region-specific slopes b_g = beta + 0.15 d_g with the d_g drawn once (seed 15) and held
       fixed: the estimand is the pseudo-true slope of these regions, computed by a fit on
       10^7 firms of the same regions (``pseudo_true_slope``);
  (c2) the same slopes redrawn every replication: the estimand is the pseudo-true slope of the
       superpopulation of regions like them, which is beta = 0 exactly under the null by
       symmetry ((x, d) -> (-x, -d) leaves the process unchanged and flips the slope);
  (d) shocks within region x industry cells, w_gk ~ N(0, 0.5^2), together with the cell
       component of x: firms of a cell are correlated, regions are not, and the estimand is 0
       under the null (y is independent of x within every cell).
* Every replication fits the logit of y on (1, x, z, region and industry dummies) and tests
  b_x = b0 at 5% with: the firm-level robust Wald test (N/(N-1)), the region-clustered Wald test
  (G/(G-1)), the wild cluster score bootstrap by region (null imposed; Webb weights, all 6^5 =
  7,776 vectors enumerated at G = 5; Rademacher, 999 random draws at G = 30; buzzpipe's
  conventions) and the Wald test clustered by region x industry cell. b0 is the estimand under
  the null (size) and 0 under beta = 0.23 (power). Normal reference for every Wald test.
* G*: the effective number of clusters of Carter, Schnepel and Steigerwald (2017) as in
  ``few_clusters_monte_carlo.wald_size_check``: G* = (sum_c gamma_c)^2 / sum_c gamma_c^2 with
  gamma_c the mean over replications of the squared sum of cluster c's partialled slope scores.

Fits are batched: a block of replications is one stacked Newton iteration (R x n x p arrays),
scores and bootstrap statistics are array operations over the block. Replications run in
rounds over all cells, so a run stopped early leaves every cell with about the same number of
replications (each replication's seed depends only on its cell and its number).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from buzzpipe import __version__
from buzzpipe.estimate.wild_bootstrap import enumerate_draws

REGION_SIZES = (874, 285, 190, 181, 74)
INDUSTRY_SHARES = (0.17, 0.17, 0.24, 0.08, 0.09, 0.25)  # synth/presets/norway2010.toml
PROCESSES = ("a", "b", "c1", "c2", "d")
PROCESS_NAMES = {
    "a": "(a) independent firms",
    "b": "(b) region shock in levels",
    "c1": "(c1) region slopes, fixed",
    "c2": "(c2) region slopes, redrawn",
    "d": "(d) region x industry cell shocks",
}
ESTIMANDS = {
    "a": "the common slope",
    "b": "the common slope",
    "c1": "these regions' pseudo-true slope",
    "c2": "regions like them: the superpopulation's pseudo-true slope",
    "d": "the common slope of the logit fit (population over cells)",
}
INFERENCES = ("firm_robust", "region_wald", "region_wild", "cell_wald")
INFERENCE_NAMES = {
    "firm_robust": "firm-level robust",
    "region_wald": "region-clustered Wald",
    "region_wild": "wild score bootstrap by region",
    "cell_wald": "region x industry cluster Wald",
}
Z_CRITICAL = 1.959963984540054
POWER_SLOPE = 0.23  # the published coefficient (odds ratio 1.26)
SLOPE_SD = 0.15  # s.d. of the region-specific slopes, processes c1 and c2
SHOCK_SD = 0.5  # s.d. of the region (b) and cell (d) shocks on the logit scale
FIXED_SLOPES_SEED = 15
SEED = 20261206


@dataclass(frozen=True)
class Design:
    """Who is in which region and industry, and the dummies of the fitted model."""

    n_regions: int
    region: np.ndarray  # region code per firm
    industry: np.ndarray  # industry code per firm
    cell: np.ndarray  # region x industry cell code per firm
    dummies: np.ndarray  # n x (G - 1 + 5): region and industry indicators (first left out)

    @property
    def firms(self) -> int:
        return len(self.region)

    @property
    def n_cells(self) -> int:
        return int(self.cell.max()) + 1

    @property
    def cell_design(self) -> np.ndarray:
        """C x (1 + dummies): each cell's intercept and dummies (the firms' rows, deduplicated)."""
        first = np.unique(self.cell, return_index=True)[1]
        return np.column_stack([np.ones(len(first)), self.dummies[first]])


def _allocate(total: int, shares) -> np.ndarray:
    """Largest-remainder allocation of ``total`` to ``shares``."""
    exact = np.asarray(shares, dtype=float) / np.sum(shares) * total
    counts = np.floor(exact).astype(int)
    short = total - counts.sum()
    counts[np.argsort(counts - exact, kind="stable")[:short]] += 1
    return counts


def build_design(n_regions: int, copies: int = 1) -> Design:
    """G = 5: the five regions; G = 30: each split into six near-equal parts (own regions).

    ``copies`` repeats the whole design (the population of ``pseudo_true_slope``).
    """
    parts = n_regions // len(REGION_SIZES)
    if parts * len(REGION_SIZES) != n_regions:
        raise ValueError(f"G must be a multiple of {len(REGION_SIZES)}")
    sizes = [
        size // parts + (1 if part < size % parts else 0)
        for size in REGION_SIZES
        for part in range(parts)
    ]
    region, industry = [], []
    for code, size in enumerate(sizes):
        counts = _allocate(size, INDUSTRY_SHARES)
        region.append(np.full(size, code))
        industry.append(np.repeat(np.arange(len(INDUSTRY_SHARES)), counts))
    region = np.tile(np.concatenate(region), copies)
    industry = np.tile(np.concatenate(industry), copies)
    copy = np.repeat(np.arange(copies), len(region) // copies)
    # cells are region x industry within a copy: each copy draws its own cell components
    key = (copy * n_regions + region) * len(INDUSTRY_SHARES) + industry
    _, cell = np.unique(key, return_inverse=True)
    region_dummies = (region[:, None] == np.arange(1, n_regions)[None, :]).astype(float)
    industry_dummies = (industry[:, None] == np.arange(1, len(INDUSTRY_SHARES))[None, :]).astype(
        float
    )
    return Design(n_regions, region, industry, cell, np.hstack([region_dummies, industry_dummies]))


def fixed_slopes(n_regions: int) -> np.ndarray:
    """The d_g of process (c1): drawn once (seed 15), the same in every replication."""
    return np.random.default_rng([FIXED_SLOPES_SEED, n_regions]).standard_normal(n_regions)


def simulate(rng, design: Design, process: str, beta: float, expected: bool = False):
    """One sample: x, z and y (or, with ``expected``, P(y = 1), for pseudo-true fits).

    The population of a pseudo-true fit (``expected``) has no region component in x: it is
    constant within a region, so the region fixed effects absorb it (also times a region's own
    slope), but blocks of the population drawn separately would each have their own.
    """
    n, G = design.firms, design.n_regions
    a = np.zeros(G) if expected else rng.standard_normal(G)
    c = rng.standard_normal(design.n_cells)
    x = math.sqrt(0.5) * a[design.region] + 0.5 * c[design.cell] + 0.5 * rng.standard_normal(n)
    z = rng.standard_normal(n)
    index = -0.1 + 0.3 * z
    if process == "c1":
        slopes = beta + SLOPE_SD * fixed_slopes(G)[design.region]
    elif process == "c2":
        slopes = beta + SLOPE_SD * rng.standard_normal(G)[design.region]
    else:
        slopes = beta
    index = index + slopes * x
    if process == "b":
        index = index + SHOCK_SD * rng.standard_normal(G)[design.region]
    if process == "d":
        index = index + SHOCK_SD * rng.standard_normal(design.n_cells)[design.cell]
    probability = expit(index)
    y = probability if expected else (rng.random(n) < probability).astype(float)
    return x, z, y


class DenseBatch:
    """R designs held whole: X is R x n x p (the reference the cell-level design is checked on)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.width = X.shape[2]

    def linear(self, params: np.ndarray) -> np.ndarray:
        return (self.X @ params[:, :, None])[:, :, 0]

    def gradient(self, residual: np.ndarray) -> np.ndarray:
        return (self.X.transpose(0, 2, 1) @ residual[:, :, None])[:, :, 0]

    def hessian(self, weights: np.ndarray) -> np.ndarray:
        scaled = self.X * np.sqrt(weights)[:, :, None]
        return np.stack([block.T @ block for block in scaled])

    def subset(self, rows: np.ndarray) -> DenseBatch:
        return DenseBatch(self.X[rows])


class CellBatch:
    """R designs [dense columns | columns constant within cells], the dummies never expanded.

    Columns: the R x n x d ``dense`` ones (x, z: they differ by replication), then the C x k
    cell-level design ``E`` (intercept, region and industry dummies: each firm's row is its
    cell's). Sums over firms of cell-constant columns are sums over cells of within-cell sums,
    so the Hessian costs R n d + R C k^2 instead of R n (d + k)^2 (37 columns at G = 30).
    """

    def __init__(
        self, dense: np.ndarray, E: np.ndarray, cell: np.ndarray, onehot=None, sparse=False
    ) -> None:
        self.dense, self.E, self.cell = dense, E, cell
        if onehot is None and not sparse:
            onehot = np.zeros((len(cell), E.shape[0]))
            onehot[np.arange(len(cell)), cell] = 1.0
        self.onehot = onehot  # None: cell sums by bincount (a large population, few rows)
        self.d = dense.shape[2]
        self.width = self.d + E.shape[1]

    def cell_sums(self, values: np.ndarray) -> np.ndarray:
        """... x n -> ... x C: sums within cells."""
        if self.onehot is not None:
            return values @ self.onehot
        flat = values.reshape(-1, values.shape[-1])
        C = self.E.shape[0]
        sums = np.stack([np.bincount(self.cell, weights=v, minlength=C) for v in flat])
        return sums.reshape(*values.shape[:-1], C)

    def linear(self, params: np.ndarray) -> np.ndarray:
        fixed = (params[:, self.d :] @ self.E.T)[:, self.cell]
        return fixed + np.einsum("rnd,rd->rn", self.dense, params[:, : self.d])

    def gradient(self, residual: np.ndarray) -> np.ndarray:
        dense = np.einsum("rnd,rn->rd", self.dense, residual)
        return np.concatenate([dense, self.cell_sums(residual) @ self.E], axis=1)

    def hessian(self, weights: np.ndarray) -> np.ndarray:
        R, d = weights.shape[0], self.d
        weighted = self.dense * weights[:, :, None]  # R x n x d
        out = np.empty((R, self.width, self.width))
        out[:, :d, :d] = np.einsum("rnd,rne->rde", weighted, self.dense)
        per_cell = self.cell_sums(weighted.transpose(0, 2, 1))  # R x d x C
        cross = per_cell @ self.E  # R x d x k
        out[:, :d, d:] = cross
        out[:, d:, :d] = cross.transpose(0, 2, 1)
        cell_weights = self.cell_sums(weights)  # R x C
        out[:, d:, d:] = (self.E.T[None] * cell_weights[:, None, :]) @ self.E
        return out

    def subset(self, rows: np.ndarray) -> CellBatch:
        return CellBatch(self.dense[rows], self.E, self.cell, self.onehot)


def _solve(matrices: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Batched solve; a singular system (a separated sample) gives NaN instead of an error."""
    try:
        return np.linalg.solve(matrices, right)
    except np.linalg.LinAlgError:
        out = np.full(right.shape, np.nan)
        for r in range(len(matrices)):
            try:
                out[r] = np.linalg.solve(matrices[r], right[r])
            except np.linalg.LinAlgError:
                pass
        return out


def batch_logit(design, y: np.ndarray, offset: np.ndarray, start=None, max_iter: int = 50):
    """Newton fits of R logits at once (``design`` a DenseBatch or CellBatch; y, offset R x n;
    ``start`` R x p). Returns (params, converged); a fit stops when its Newton decrement is
    below 1e-16 (the step is still taken). A fit whose Hessian turns singular or whose
    coefficients pass 25 in absolute value (a region or cell whose firms all share one outcome:
    separation, which Stata handles by dropping those firms) is stopped and flagged as not
    converged; the Monte Carlo counts such replications and leaves them out."""
    R, p = y.shape[0], design.width
    params = np.zeros((R, p)) if start is None else np.array(start, dtype=float)
    active = np.ones(R, dtype=bool)
    broken = np.zeros(R, dtype=bool)
    for _ in range(max_iter):
        index = np.flatnonzero(active)
        if not len(index):
            break
        part = design if len(index) == R else design.subset(index)
        mu = expit(part.linear(params[index]) + offset[index])
        gradient = part.gradient(y[index] - mu)
        hessian = part.hessian(mu * (1 - mu))
        step = _solve(hessian, gradient[:, :, None])[:, :, 0]
        failed = ~np.isfinite(step).all(axis=1)
        step[failed] = 0.0
        params[index] += step
        decrement = np.einsum("rp,rp->r", gradient, step)
        failed |= np.abs(params[index]).max(axis=1) > 25
        active[index[decrement < 1e-16]] = False
        active[index[failed]] = False
        broken[index[failed]] = True
    return params, ~active & ~broken


def partialled_scores(design, y, offset, params, column: int = 0) -> np.ndarray:
    """u_i = d_i x_i' H^{-1} e_column (the slope's partialled score), R x n, at ``params``."""
    mu = expit(design.linear(params) + offset)
    unit = np.zeros((y.shape[0], design.width, 1))
    unit[:, column, 0] = 1.0
    direction = _solve(design.hessian(mu * (1 - mu)), unit)[:, :, 0]
    return (y - mu) * design.linear(direction)


def cluster_sums(scores: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """R x C sums of R x n scores by group code."""
    indicator = np.zeros((len(codes), n_groups))
    indicator[np.arange(len(codes)), codes] = 1.0
    return scores @ indicator


def wild_statistics(sums: np.ndarray, shares: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """t(v) of ``WildScoreBootstrap.statistics`` for R replications: sums R x G, draws G x B
    (or R x G x B, one set per replication); G/(G-1) in the denominator."""
    G = sums.shape[1]
    if draws.ndim == 2:
        draws = np.broadcast_to(draws, (sums.shape[0], *draws.shape))
    numerator = np.einsum("rg,rgb->rb", sums, draws)
    recentred = draws * sums[:, :, None] - shares[None, :, None] * numerator[:, None, :]
    denominator = G / (G - 1) * np.einsum("rgb,rgb->rb", recentred, recentred)
    return numerator / np.sqrt(denominator)


@dataclass
class Cell:
    """One cell of the table: a process, a G, a true slope; running counts."""

    process: str
    n_regions: int
    beta: float
    null_value: float  # the tested value: the estimand under the null, 0 for power
    estimand: float  # the pseudo-true slope (for beta = 0.23 where computed, else nan)
    replications: int = 0
    rejections: dict = field(default_factory=lambda: dict.fromkeys(INFERENCES, 0))
    not_converged: int = 0
    region_variance: list = field(default_factory=list)  # running sum of squared region sums
    cell_variance: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.process}-G{self.n_regions}-{'size' if self.beta == 0 else 'power'}"

    def rate(self, inference: str) -> float:
        return self.rejections[inference] / self.replications

    def mc_se(self, inference: str) -> float:
        rate = self.rate(inference)
        return math.sqrt(rate * (1 - rate) / self.replications)

    @staticmethod
    def effective_clusters(variance: list) -> float:
        gamma = np.asarray(variance)
        return float(gamma.sum() ** 2 / (gamma**2).sum())

    def record(self) -> dict:
        return asdict(self) | {
            "rates": {i: self.rate(i) for i in INFERENCES},
            "mc_se": {i: self.mc_se(i) for i in INFERENCES},
            "g_star_region": self.effective_clusters(self.region_variance),
            "g_star_cell": self.effective_clusters(self.cell_variance),
        }


def run_block(cell: Cell, design: Design, first: int, count: int, draws_at_30: int = 999):
    """Replications first..first+count-1 of ``cell``, batched; updates its counts."""
    start = time.perf_counter()
    seeds = np.random.SeedSequence([SEED, PROCESSES.index(cell.process), cell.n_regions])
    children = seeds.spawn(first + count)[first:]
    samples, rngs = [], []
    for child in children:
        rng = np.random.default_rng(child)
        samples.append(simulate(rng, design, cell.process, cell.beta))
        rngs.append(rng)
    n, G = design.firms, design.n_regions
    x = np.stack([s[0] for s in samples])
    z = np.stack([s[1] for s in samples])
    y = np.stack([s[2] for s in samples])
    R = len(samples)
    full = CellBatch(np.stack([x, z], axis=2), design.cell_design, design.cell)
    zero = np.zeros((R, n))
    params, converged = batch_logit(full, y, zero)
    offset = cell.null_value * x
    restricted, restricted_converged = batch_logit(
        CellBatch(z[:, :, None], design.cell_design, design.cell, full.onehot),
        y,
        offset,
        start=params[:, 1:],
    )
    ok = converged & restricted_converged
    full_restricted = np.insert(restricted, 0, cell.null_value, axis=1)
    # Wald tests: the slope's variance is a sum of squared partialled score sums
    scores = partialled_scores(full, y, zero, params)
    region = cluster_sums(scores, design.region, G)
    cells = cluster_sums(scores, design.cell, design.n_cells)
    distance = np.abs(params[:, 0] - cell.null_value)
    variances = {
        "firm_robust": n / (n - 1) * (scores**2).sum(axis=1),
        "region_wald": G / (G - 1) * (region**2).sum(axis=1),
        "cell_wald": design.n_cells / (design.n_cells - 1) * (cells**2).sum(axis=1),
    }
    rejected = {name: distance / np.sqrt(v) > Z_CRITICAL for name, v in variances.items()}
    # the wild score bootstrap by region, null imposed
    restricted_scores = partialled_scores(full, y, zero, full_restricted)
    sums = cluster_sums(restricted_scores, design.region, G)
    shares = np.bincount(design.region, minlength=G) / n
    actual = wild_statistics(sums, shares, np.ones((G, 1)))[:, 0]
    if G == 5:
        draws = np.asarray(enumerate_draws(G, "webb"))
    else:
        draws = np.stack([2.0 * rng.integers(0, 2, size=(G, draws_at_30)) - 1 for rng in rngs])
    distribution = wild_statistics(sums, shares, draws)
    p_values = np.mean(np.abs(distribution) >= np.abs(actual)[:, None] * (1 - 1e-10), axis=1)
    rejected["region_wild"] = p_values <= 0.05
    for name in INFERENCES:
        cell.rejections[name] += int(rejected[name][ok].sum())
    cell.replications += int(ok.sum())
    cell.not_converged += int((~ok).sum())
    region_sq = (region[ok] ** 2).sum(axis=0)
    cell_sq = (cells[ok] ** 2).sum(axis=0)
    cell.region_variance = (np.asarray(cell.region_variance or np.zeros(G)) + region_sq).tolist()
    cell.cell_variance = (
        np.asarray(cell.cell_variance or np.zeros(design.n_cells)) + cell_sq
    ).tolist()
    cell.seconds += time.perf_counter() - start


def pseudo_true_slope(
    process: str,
    n_regions: int,
    beta: float,
    firms: int = 10**7,
    block_copies: int = 600,
    seed: int = 7,
) -> float:
    """The population logit slope (region and industry fixed effects) of ``process``.

    The population repeats the design firms / 1,604 times (each copy with its own x, cell and
    firm draws; the (c1) slopes the same in all), and y is replaced by P(y = 1), which has the
    same population moments and less noise. Newton steps over blocks regenerated from their
    seeds, so memory stays at one block.
    """
    copies = math.ceil(firms / sum(REGION_SIZES))
    blocks = [(b, min(block_copies, copies - b)) for b in range(0, copies, block_copies)]
    designs = {k: build_design(n_regions, k) for k in {count for _, count in blocks}}
    p = 2 + designs[blocks[0][1]].cell_design.shape[1]
    params = np.zeros(p)
    for _ in range(30):
        gradient, hessian = np.zeros(p), np.zeros((p, p))
        for first, count in blocks:
            design = designs[count]
            x, z, probability = simulate(
                np.random.default_rng([seed, first]), design, process, beta, expected=True
            )
            population = CellBatch(
                np.stack([x, z], axis=1)[None], design.cell_design, design.cell, sparse=True
            )
            mu = expit(population.linear(params[None]))
            gradient += population.gradient(probability[None] - mu)[0]
            hessian += population.hessian(mu * (1 - mu))[0]
        step = np.linalg.solve(hessian, gradient)
        params += step
        if gradient @ step < 1e-18:
            break
    return float(params[0])


def make_cells(regions=(5, 30), processes=PROCESSES, estimands: dict | None = None) -> list[Cell]:
    """Size and power cells; c1's null value is its pseudo-true slope at beta = 0."""
    estimands = estimands or {}
    cells = []
    for G in regions:
        for process in processes:
            null = estimands.get((process, G, 0.0), 0.0)
            cells.append(Cell(process, G, 0.0, null, null))
            power_truth = estimands.get((process, G, POWER_SLOPE), float("nan"))
            cells.append(Cell(process, G, POWER_SLOPE, 0.0, power_truth))
    return cells


def table(cells: list[Cell]) -> str:
    """Markdown: rejection rates (Monte Carlo s.e.), replications and G* per cell."""
    header = (
        "| process | G | true slope (estimand) | tested | replications | "
        + " | ".join(INFERENCE_NAMES[i] for i in INFERENCES)
        + " | G* region | G* cell | left out (separated) |"
    )
    lines = [header, "|" + "---|" * (len(INFERENCES) + 8)]
    for cell in cells:
        if not cell.replications:
            continue
        record = cell.record()
        truth = "" if math.isnan(cell.estimand) else f" ({cell.estimand:.4f})"
        entries = [f"{record['rates'][i]:.3f} ({record['mc_se'][i]:.3f})" for i in INFERENCES]
        lines.append(
            f"| {PROCESS_NAMES[cell.process]} | {cell.n_regions} | {cell.beta:g}{truth} | "
            f"{cell.null_value:.4f} | {cell.replications} | "
            + " | ".join(entries)
            + f" | {record['g_star_region']:.1f} | {record['g_star_cell']:.1f} | "
            f"{cell.not_converged} |"
        )
    return "\n".join(lines)


def cells_from_json(path: str | Path) -> list[Cell]:
    """The cells of a run's JSON (to print its table again)."""
    fields = Cell.__dataclass_fields__
    return [
        Cell(**{k: v for k, v in record.items() if k in fields})
        for record in json.loads(Path(path).read_text())["cells"]
    ]


def run(
    replications: int = 2000,
    block: int = 50,
    output: str | Path | None = None,
    regions=(5, 30),
    processes=PROCESSES,
    deadline: float | None = None,
    report=print,
) -> list[Cell]:
    """The whole Monte Carlo, in rounds of ``block`` replications over every cell.

    ``deadline`` (a time.time() value) stops after the round that passes it; the JSON written
    to ``output`` after each round says how many replications each cell has.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        estimands = {}
        for G in regions:
            if "c1" in processes:
                for beta in (0.0, POWER_SLOPE):
                    truth = estimands[("c1", G, beta)] = pseudo_true_slope("c1", G, beta)
                    report(f"pseudo-true slope, c1, G = {G}, beta = {beta}: {truth:.5f}")
        cells = make_cells(regions, processes, estimands)
        designs = {G: build_design(G) for G in regions}
        done = 0
        while done < replications:
            count = min(block, replications - done)
            for cell in cells:
                run_block(cell, designs[cell.n_regions], done, count)
            done += count
            report(f"{done} replications per cell")
            if output is not None:
                Path(output).write_text(
                    json.dumps(
                        {
                            "version": __version__,
                            "seed": SEED,
                            "target_replications": replications,
                            "cells": [c.record() for c in cells],
                        },
                        indent=1,
                    )
                )
            if deadline is not None and time.time() > deadline:
                report("deadline reached: stopping after this round")
                break
    report(table(cells))
    return cells


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=2000)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--output", default="study_design_mc.json")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--table", metavar="JSON", help="print the table of a finished run")
    args = parser.parse_args(argv)
    if args.table:
        print(table(cells_from_json(args.table)))
        return
    deadline = None if args.minutes is None else time.time() + 60 * args.minutes
    run(args.replications, args.block, args.output, deadline=deadline)


if __name__ == "__main__":
    main()
