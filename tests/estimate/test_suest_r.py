"""suest's cross-model covariance against R: sandwich::vcovCL on a stacked model.

Another route to the same numbers: each firm appears once per equation in a long data set, one
glm fits every equation's coefficients at once (equation dummies interacted with the
regressors, so the coefficients and Hessian blocks are the separate fits'), and
``vcovCL(cluster = ~firm, type = "HC0")`` sums each firm's scores over its equations before the
outer product; its factor G/(G-1) with G = firms is Stata's N/(N-1) of suest's robust
covariance. Clustered by region instead, it is suest's cluster covariance. Nothing here comes
from buzzpipe or from the hand-stacked reference in test_suest.py: the cross-model block is
R's. The process outcome is missing for some firms, so the union sample (firms with either
outcome) is checked too. Needs ``Rscript`` with sandwich (tests/references.py).
"""

import json
import subprocess

import numpy as np
import pandas as pd
from references import require_rscript

from buzzpipe.estimate import fit
from buzzpipe.estimate.suest import suest

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(sandwich))
d <- read.csv(args[1])
regressors <- c("breadth_regional", "breadth_international", "foreign_share")
long <- rbind(
  data.frame(firm = d$firm_id, region = d$region, eq = "product", y = d$product, d[regressors]),
  data.frame(firm = d$firm_id, region = d$region, eq = "process", y = d$process, d[regressors]))
long <- long[!is.na(long$y), ]
long$eq <- factor(long$eq, levels = c("product", "process"))
m <- glm(y ~ 0 + eq + eq:(breadth_regional + breadth_international + foreign_share),
         family = binomial(), data = long, control = glm.control(epsilon = 1e-14, maxit = 100))
by_firm <- vcovCL(m, cluster = ~firm, type = "HC0")
by_region <- vcovCL(m, cluster = ~region, type = "HC0")
out <- list(names = names(coef(m)), params = unname(coef(m)),
            by_firm = unname(as.vector(by_firm)), by_region = unname(as.vector(by_region)),
            firms = length(unique(long$firm)))
writeLines(paste0("{",
  sprintf('"names": [%s], ', paste0('"', out$names, '"', collapse = ",")),
  paste(sprintf('"%s": [%s]', c("params", "by_firm", "by_region", "firms"),
    sapply(out[c("params", "by_firm", "by_region", "firms")],
           function(v) paste(sprintf("%.17g", v), collapse = ","))), collapse = ", "),
  "}"), args[2])
"""

RIGHT = "breadth_regional + breadth_international + foreign_share"


def firms(seed: int = 5, n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "firm_id": np.arange(n) + 100,
            "breadth_regional": rng.poisson(1.2, n).astype(float),
            "breadth_international": rng.poisson(0.8, n).astype(float),
            "foreign_share": rng.uniform(0, 1, n),
            "region": rng.integers(0, 25, n),
        }
    )
    shared = rng.normal(size=n)  # one firm trait behind both outcomes: a real cross-model block
    base = -0.6 + 0.2 * data.breadth_regional + 0.4 * data.foreign_share + 0.9 * shared
    product = base + 0.5 * data.breadth_international
    process = base + 0.2 * data.breadth_international
    data["product"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-product))).astype(float)
    data["process"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-process))).astype(float)
    data.loc[data.index[:70], "process"] = np.nan  # differing samples: the union is checked
    return data.set_index(pd.Index(data.firm_id.to_numpy(), name="firm"))


def r_name(name: str) -> str:
    """R's coefficient name (eqproduct, eqproduct:foreign_share) as suest's (product:...)."""
    equation, _, term = name.partition(":")
    return f"{equation.removeprefix('eq')}:{term or 'Intercept'}"


def test_cross_model_covariance_equals_r_sandwich_on_the_stacked_model(tmp_path):
    require_rscript("sandwich")
    data = firms()
    csv, out, script = tmp_path / "firms.csv", tmp_path / "r.json", tmp_path / "stacked.R"
    data.to_csv(csv, index=False)
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), str(csv), str(out)], check=True, timeout=300)
    r = json.loads(out.read_text())
    names = [r_name(name) for name in r["names"]]
    k = len(names)

    models = [
        fit(f"product ~ {RIGHT}", data, family="logit"),
        fit(f"process ~ {RIGHT}", data, family="logit"),
    ]
    stacked = suest(models, data)
    assert stacked.nobs == r["firms"][0] == len(data)  # the union: every firm has product
    ours = stacked.params.loc[names].to_numpy()
    np.testing.assert_allclose(ours, r["params"], rtol=1e-7)
    for vcov, key in (("robust", "by_firm"), ({"cluster": "region"}, "by_region")):
        theirs = pd.DataFrame(np.reshape(r[key], (k, k), order="F"), index=names, columns=names)
        mine = suest(models, data, vcov=vcov).vcov.loc[names, names]
        scale = np.sqrt(np.outer(np.diag(theirs), np.diag(theirs)))
        np.testing.assert_allclose(np.diag(mine), np.diag(theirs), rtol=1e-6)
        np.testing.assert_allclose(mine / scale, theirs / scale, atol=1e-7)
        # the cross-model block is what suest adds; it must be there and be R's
        cross = theirs.loc[
            [n for n in names if n.startswith("product:")],
            [n for n in names if n.startswith("process:")],
        ]
        assert np.abs(cross.to_numpy()).max() > 1e-4
