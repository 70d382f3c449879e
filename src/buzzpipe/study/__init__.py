"""study stage: the clusters-versus-pipelines battery, its verdicts and policy counterfactuals.

``buzzpipe.study.battery.run_study(survey)`` runs everything and returns a
``buzzpipe.results.StudyResults`` (the results contract, ``results/``, writes it as
``results.json`` for the report stage). Modules, one job
each: ``models`` (main models on one shared sample), ``partner_types``, ``pipelines_vs_buzz``,
``probability_changes`` (changes in predicted probability with delta-method gradients),
``complementarity``, ``spillover``, ``heterogeneity``, ``across_outcomes`` (suest),
``sensitivity`` (region-clustered errors, wild score bootstrap), ``counterfactuals``,
``verdicts`` (the written rule table; its sentences are the findings catalogue's,
``buzzpipe.results.findings``).
See ../shared/DESIGN.md and the README section on the study.
"""
