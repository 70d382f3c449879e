"""The version of ``results.json``'s format (2: the results contract; 1 is converted)."""

FORMAT_VERSION = 2
