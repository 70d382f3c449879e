* The Stata commands behind ols_stata.json (regress with clustered errors; the LPM's conventions).
*
* We did not run Stata. The numbers were recorded from Stata output in statsmodels' test suite:
*   statsmodels/regression/tests/results/results_grunfeld_ols_robust_cluster.py, results_cluster
*     (cmdline "regress invest mvalue kstock, vce(cluster company)");
*   statsmodels/genmod/tests/results/results_glm_poisson_weights.py, results_wls_pweight_clu1
*     (cmdline "regress executions income perpoverty perblack LN_VC100k96 south degree
*     [pweight=fweight], vce(cluster id)").
* ols_stata.json holds the numbers exactly as recorded there (checked equal to statsmodels' files
* to 1e-12 when they were moved).

* "grunfeld_cluster": the first 200 rows of Grunfeld's data (statsmodels.datasets.grunfeld;
* invest, value = mvalue, capital = kstock, firm = company): params, cov, pvalues (t(G-1)),
* ll, ll_0, F, r2
regress invest mvalue kstock, vce(cluster company)

* "cpunish_pweight_cluster": statsmodels.datasets.cpunish with
*   fweight = 1 1 1 2 2 2 3 3 3 1 1 1 2 2 2 3 3 and id = floor(_n / 2)
* (as statsmodels' genmod/tests/test_glm_weights.py builds them): params, bse, pvalues, ll, ll_0, r2
regress executions income perpoverty perblack LN_VC100k96 south degree [pweight=fweight], vce(cluster id)
