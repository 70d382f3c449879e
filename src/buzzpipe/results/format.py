"""The version of ``results.json``'s format.

3: notes, hypotheses and programme notes as records; 2: the results contract (facts as
records, one descriptive table); 1: before the results contract. Formats 1 and 2 are converted
on reading (``version_1``, ``version_2``).
"""

FORMAT_VERSION = 3
