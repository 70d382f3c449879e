"""The wild-bootstrap inverted sets of a study battery, on their own: CPU time and the sets.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/bench_wild_sets.py [--repeat 3]
        [--world norway2010 --seed 2010] [--save sets.json] [--against other.json]

Runs the battery of ``buzzpipe replicate`` once (``run_study`` through ``end_to_end._study``)
and keeps a copy of each ``WildScoreBootstrap`` as each of its inverted sets is asked for
(``confidence_set``: the coefficients' sets; ``restriction_confidence_set``: the first-partner
differences'), with the call's arguments. Then it asks for every set again on a fresh copy of
its bootstrap, ``--repeat`` times, timing the process's CPU (``time.process_time``) around the
call alone: the sets' own cost as the battery pays it (each bootstrap fresh, its restricted
fits started as in the battery), without the rest of the battery's noise. Prints the total's
min and median and the coefficients' and restrictions' shares.

``--save`` writes each set's record (``ConfidenceSet.as_record``, with its scale: the
cluster-robust standard error or g's delta-method one) to a JSON file; ``--against`` compares
this code's sets with such a file from another commit (run this file with that commit's
interpreter and ``PYTHONPATH``): the same pieces, notes and undetermined ends, and the largest
move of a bound in standard errors of its set (test inversion's tolerance is rtol = 1e-7 of
one). Timings are printed, never asserted; on a shared machine alternate the two commits' runs.
"""

import argparse
import copy
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SET_METHODS = ("confidence_set", "restriction_confidence_set")


def captured_sets(world: str, seed: int) -> list:
    """(method, bootstrap copy, args, kwargs) of every inverted set of one battery, in order."""
    from buzzpipe.end_to_end import StudyOptions, _study
    from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap
    from buzzpipe.synth import synthesize

    found = []
    originals = {name: getattr(WildScoreBootstrap, name) for name in SET_METHODS}

    def keeping(name):
        def asked(self, *args, **kwargs):
            found.append((name, copy.deepcopy(self), args, kwargs))
            return originals[name](self, *args, **kwargs)

        return asked

    for name in SET_METHODS:
        setattr(WildScoreBootstrap, name, keeping(name))
    try:
        _study(synthesize(world, seed), StudyOptions(seed=seed))
    finally:
        for name, method in originals.items():
            setattr(WildScoreBootstrap, name, method)
    return found


def timed_sets(found: list, repeat: int) -> tuple[list, list]:
    """CPU seconds of each round of all sets (a fresh bootstrap copy each), and the sets' records
    (with each set's scale) from the first round."""
    from buzzpipe.estimate.wild_bootstrap import WildScoreBootstrap

    scales = []
    inverted = WildScoreBootstrap._inverted_set

    def scaled(self, inversion, name, centre, scale, alpha, **options):
        scales.append(scale)
        return inverted(self, inversion, name, centre, scale, alpha, **options)

    WildScoreBootstrap._inverted_set = scaled
    rounds, records = [], []
    try:
        for round_ in range(repeat):
            seconds = {name: 0.0 for name in SET_METHODS}
            for name, bootstrap, args, kwargs in found:
                fresh = copy.deepcopy(bootstrap)
                started = time.process_time()
                found_set = getattr(fresh, name)(*args, **kwargs)
                seconds[name] += time.process_time() - started
                if round_ == 0:
                    records.append({"method": name, "scale": scales[-1], **found_set.as_record()})
            rounds.append(seconds)
    finally:
        WildScoreBootstrap._inverted_set = inverted
    return rounds, records


def compared(records: list, other: list) -> list[str]:
    """What differs between two runs' sets, and the largest bound move in standard errors."""
    lines, largest = [], 0.0
    if len(records) != len(other):
        return [f"different numbers of sets: {len(records)} against {len(other)}"]
    for mine, theirs in zip(records, other, strict=True):
        same_shape = (
            len(mine["intervals"]) == len(theirs["intervals"])
            and mine["notes"] == theirs["notes"]
            and mine["undetermined_ends"] == theirs["undetermined_ends"]
        )
        if not same_shape:
            lines.append(f"{mine['term']}: pieces, notes or ends differ")
            continue
        for piece, reference in zip(mine["intervals"], theirs["intervals"], strict=True):
            for bound, expected in zip(piece, reference, strict=True):
                if (bound is None) != (expected is None):
                    lines.append(f"{mine['term']}: an end bounded in one run only")
                elif bound is not None:
                    largest = max(largest, abs(bound - expected) / theirs["scale"])
    lines.append(f"largest bound move: {largest:.3g} standard errors (tolerance 1e-7)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--world", default="norway2010")
    parser.add_argument("--seed", type=int, default=2010)
    parser.add_argument("--save", help="write the sets' records to this JSON file")
    parser.add_argument("--against", help="compare with the records in this JSON file")
    options = parser.parse_args()

    found = captured_sets(options.world, options.seed)
    rounds, records = timed_sets(found, options.repeat)
    totals = [1000 * sum(seconds.values()) for seconds in rounds]
    load = os.getloadavg()[0]
    print(
        f"{len(found)} sets of a {options.world} battery, {options.repeat} rounds, "
        f"CPU time, load average {load:.1f}"
    )
    print(
        f"all sets: min {min(totals):.1f} ms, median {statistics.median(totals):.1f} ms "
        f"({' '.join(f'{total:.1f}' for total in totals)})"
    )
    for name in SET_METHODS:
        shares = [1000 * seconds[name] for seconds in rounds]
        print(f"  {name}: min {min(shares):.1f} ms, median {statistics.median(shares):.1f} ms")
    if options.save:
        with open(options.save, "w") as out:
            json.dump(records, out, indent=1)
    if options.against:
        with open(options.against) as handle:
            for line in compared(records, json.load(handle)):
                print(line)


if __name__ == "__main__":
    main()
