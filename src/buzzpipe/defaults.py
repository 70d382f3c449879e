"""The defaults a user meets, in one place: the command line, the stages and the Python API all
take them from here (light to import, so the command line starts quickly)."""

# The built-in calibrated survey: the replica of the published Norwegian study and its seed
# (``buzzpipe replicate``, ``buzzpipe describe --builtin``, ``bp.synthesize()``).
PRESET = "norway2010"
REPLICATION_SEED = 2010

# The study (``bp.run_study``, ``buzzpipe study``, ``replicate``, ``analyze``).
STUDY_SEED = 0  # seed of every bootstrap of a study of the user's own survey
BOOTSTRAP_REPLICATIONS = 199  # firm bootstrap behind the counterfactuals' intervals
WILD_BOOTSTRAP_DRAWS = 9999  # region-clustered wild score bootstrap (sensitivity)
