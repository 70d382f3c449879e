# The R reference numbers of fit_r.json (tests/estimate/test_fit_r.py):
#   Rscript fit_r.R fit_r_data.csv fit_r.json
# glm logit with sandwich::vcovCL(type = "HC0") by region (cluster-robust with the G/(G-1) factor,
# = Stata's vce(cluster region)) and MASS::polr (ordered logit). fit_r_data.csv is 900 synthetic
# firms drawn by numpy (seed 2024; see make_data in test_fit_r.py).
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
