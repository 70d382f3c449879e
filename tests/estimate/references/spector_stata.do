* The Stata commands behind spector_stata.json (Stata 11, Spector and Mazzeo's 32 students).
*
* We did not run Stata. The numbers were recorded from Stata 11 output in statsmodels' test suite:
*   statsmodels/discrete/tests/results/results_discrete.py, class Spector (logit, probit and the
*     margins of the logit: margeff_nodummy_* with psi continuous, margeff_dummy_* with i.psi),
*   statsmodels/discrete/tests/results/results_glm_logit_constrained.py,
*     results_noconstraint_robust (cmdline "glm grade gpa tuce psi, family(binomial) vce(robust)").
* This do-file writes down the commands those records name; spector_stata.json holds the numbers
* exactly as recorded there (checked equal to statsmodels' files to 1e-12 when they were moved).
* The data are statsmodels.datasets.spector (grade gpa tuce psi), as the tests load them.

use spector, clear

* "logit": params, cov, llf, llnull, prsquared, aic, bic (estat ic), z, pvalues
logit grade gpa tuce psi
estat ic

* "margins" (psi continuous)
margins, dydx(*)                               // dydx
margins, dydx(*) atmeans                       // dydx_atmeans
margins, dydx(*) at(gpa=2 psi=1)               // dydx_at_gpa2_psi1
margins, dydx(*) at(tuce=21 psi=0) atmeans     // dydx_at_tuce21_psi0_atmeans
margins, eydx(*)                               // elasticities: eydx
margins, eydx(*) atmeans                       // eydx_atmeans
margins, dyex(*)                               // dyex
margins, dyex(*) atmeans                       // dyex_atmeans
margins, eyex(*)                               // eyex
margins, eyex(*) atmeans                       // eyex_atmeans

* "margins": psi as a factor, its discrete change from 0 to 1
logit grade gpa tuce i.psi
margins, dydx(psi)                             // psi_discrete
margins, dydx(psi) atmeans                     // psi_discrete_atmeans

* "probit"
probit grade gpa tuce psi
estat ic

* "logit_robust_cov": the logit by glm with robust errors (Stata's N/(N-1) factor)
glm grade gpa tuce psi, family(binomial) vce(robust)
