"""fit() against R: glm + sandwich::vcovCL(type = "HC0") (cluster-robust, = Stata) and MASS::polr.

Runs only where ``Rscript`` with the sandwich and MASS packages is installed (``apt-get install
r-base-core r-cran-sandwich r-cran-mass``); elsewhere it is skipped with that reason. The R script
is below, so each reference number is produced in the run that checks it.
"""

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from buzzpipe.estimate import fit

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages({library(sandwich); library(MASS)})
d <- read.csv(args[1])
d$industry <- factor(d$industry)
m <- glm(y ~ x1 + x2 + log(employees) + industry, family = binomial(), data = d,
         control = glm.control(epsilon = 1e-14, maxit = 100))
V <- vcovCL(m, cluster = ~region, type = "HC0")  # cadjust: G/(G-1), Stata's factor
p <- polr(factor(novelty) ~ x1 + x2 + industry, data = d, method = "logistic", Hess = TRUE,
          control = list(reltol = 1e-14, maxit = 1000))
out <- list(logit_params = unname(coef(m)), logit_cluster_vcov = unname(as.vector(V)),
            logit_llf = as.numeric(logLik(m)),
            polr_beta = unname(coef(p)), polr_zeta = unname(p$zeta),
            polr_llf = as.numeric(logLik(p)), polr_se = unname(sqrt(diag(vcov(p)))))
writeLines(paste0("{", paste(sprintf('"%s": [%s]', names(out),
    sapply(out, function(v) paste(sprintf("%.17g", v), collapse = ","))), collapse = ","), "}"),
    args[2])
"""


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(sandwich); library(MASS)"], capture_output=True, timeout=60
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not r_available(),
    reason="Rscript with the sandwich and MASS packages is not installed "
    "(apt-get install r-base-core r-cran-sandwich r-cran-mass)",
)


def test_logit_cluster_and_polr_match_r(tmp_path):
    rng = np.random.default_rng(2024)
    n = 900
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "industry": rng.choice(["ict", "manufacturing", "services"], n),
            "region": rng.integers(0, 30, n),
            "employees": np.exp(rng.normal(3, 1, n)),
        }
    )
    eta = 0.7 * data.x1 - 0.4 * data.x2 + 0.2 * np.log(data.employees) - 0.5
    data["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    data["novelty"] = np.digitize(eta + rng.logistic(size=n), [-0.5, 0.8])
    csv, result_path, script = tmp_path / "d.csv", tmp_path / "r.json", tmp_path / "ref.R"
    data.to_csv(csv, index=False)
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), str(csv), str(result_path)], check=True, timeout=300)
    r = json.loads(result_path.read_text())

    logit = fit("y ~ x1 + x2 + log(employees) + C(industry)", data, vcov={"cluster": "region"})
    k = logit.n_params
    np.testing.assert_allclose(logit.params, r["logit_params"], rtol=1e-8)
    assert logit.llf == pytest.approx(r["logit_llf"][0], rel=1e-8)
    theirs = np.reshape(r["logit_cluster_vcov"], (k, k), order="F")
    np.testing.assert_allclose(logit.bse, np.sqrt(np.diag(theirs)), rtol=1e-6)
    # off-diagonal elements near zero: compare on the correlation scale
    scale = np.outer(logit.bse, logit.bse)
    np.testing.assert_allclose(logit.vcov.to_numpy() / scale, theirs / scale, atol=1e-6)
    ordered = fit("novelty ~ x1 + x2 + C(industry)", data, family="ologit")
    p = len(r["polr_beta"])
    np.testing.assert_allclose(ordered.params.iloc[:p], r["polr_beta"], rtol=1e-6)
    np.testing.assert_allclose(ordered.params.iloc[p:], r["polr_zeta"], rtol=1e-6)
    assert ordered.llf == pytest.approx(r["polr_llf"][0], rel=1e-8)
    np.testing.assert_allclose(ordered.bse, r["polr_se"], rtol=1e-4)
