"""Binomial acceptance bands for the Monte Carlo tests, sized to a stated wrong implementation.

A Monte Carlo test counts events (rejections, covered intervals, verdicts matching the truth)
over ``trials`` independent seeds and accepts the count inside a band. Two numbers say whether
such a test is worth running, and both are exact binomial sums computed here:

- ``pass_probability(band, rate)`` at the rate a correct implementation has: the test must pass
  with probability at least 0.99 (``CORRECT_PASSES``);
- ``1 - pass_probability(band, rate)`` at the rate of the wrong implementation the test is meant
  to catch (size 10% instead of 5%, coverage 0.90 instead of 0.95, ...): it must fail with
  probability at least 0.9 (``WRONG_FAILS``).

Each Monte Carlo test declares its claims with ``@states(Claim(...), ...)``: the decorator
attaches them to the test, and tests/test_monte_carlo_claims.py checks that each claim meets
both thresholds and that the test's docstring names the alternative and gives both
probabilities as ``claim.sentence()`` prints them. Bands are two-sided where an error can go
either way (a size too high or too low, a coverage too low or too high).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

CORRECT_PASSES = 0.99
WRONG_FAILS = 0.9


@dataclass(frozen=True)
class Band:
    """Accept a count k of ``trials`` when ``low <= k <= high``."""

    trials: int
    low: int
    high: int

    def accepts(self, count: int) -> bool:
        return self.low <= count <= self.high

    def check(self, count: int, what: str = "count") -> None:
        """Assert that ``count`` is inside the band, saying where it fell (printed either way:
        pytest shows it with ``-s`` or on a failure)."""
        print(f"{what}: {count} of {self.trials}, band [{self.low}, {self.high}]")
        assert self.accepts(count), (
            f"{what}: {count} of {self.trials} outside the band [{self.low}, {self.high}]"
        )

    def describe(self) -> str:
        if self.low <= 0:
            return f"at most {self.high} of {self.trials}"
        if self.high >= self.trials:
            return f"at least {self.low} of {self.trials}"
        return f"{self.low} to {self.high} of {self.trials}"


def pass_probability(band: Band, rate: float) -> float:
    """P(low <= K <= high) for K ~ Binomial(trials, rate): the chance the test passes."""
    below = stats.binom.cdf(band.low - 1, band.trials, rate) if band.low > 0 else 0.0
    return float(stats.binom.cdf(band.high, band.trials, rate) - below)


def two_sided(trials: int, rate: float, alpha: float = 1 - CORRECT_PASSES) -> Band:
    """The equal-tailed band: each tail holds at most alpha / 2 at ``rate``."""
    low = int(stats.binom.ppf(alpha / 2, trials, rate))
    if stats.binom.cdf(low - 1, trials, rate) > alpha / 2:  # ppf is the first k with cdf >= q
        low -= 1
    high = int(stats.binom.isf(alpha / 2, trials, rate))
    while stats.binom.sf(high, trials, rate) > alpha / 2:
        high += 1
    return Band(trials, max(low, 0), min(high, trials))


def at_least(trials: int, rate: float, alpha: float = 1 - CORRECT_PASSES) -> Band:
    """Accept counts >= the largest bound whose lower tail at ``rate`` holds at most alpha."""
    low = int(stats.binom.ppf(alpha, trials, rate))
    while low > 0 and stats.binom.cdf(low - 1, trials, rate) > alpha:
        low -= 1
    return Band(trials, low, trials)


def at_most(trials: int, rate: float, alpha: float = 1 - CORRECT_PASSES) -> Band:
    """Accept counts <= the smallest bound whose upper tail at ``rate`` holds at most alpha."""
    high = int(stats.binom.isf(alpha, trials, rate))
    while stats.binom.sf(high, trials, rate) > alpha:
        high += 1
    return Band(trials, 0, min(high, trials))


@dataclass(frozen=True)
class Claim:
    """One banded count of a Monte Carlo test: what it measures, the rate a correct
    implementation has, and the wrong implementation(s) it must catch (name, rate)."""

    what: str
    band: Band
    correct: float
    wrong: tuple[tuple[str, float], ...]

    def correct_passes(self) -> float:
        return pass_probability(self.band, self.correct)

    def wrong_fails(self) -> dict[str, float]:
        return {name: 1 - pass_probability(self.band, rate) for name, rate in self.wrong}

    def sentence(self) -> str:
        """What the docstring must say: the band, both probabilities, rounded down to 3 digits
        (so the docstring never overstates them)."""
        wrong = "; ".join(
            f"{name} fails with probability {_floor3(self.wrong_fails()[name])}"
            for name, _rate in self.wrong
        )
        return (
            f"{self.what}: {self.band.describe()}; correct ({self.correct:g}) passes with "
            f"probability {_floor3(self.correct_passes())}; {wrong}"
        )

    def meets_thresholds(self) -> bool:
        return self.correct_passes() >= CORRECT_PASSES and all(
            p >= WRONG_FAILS for p in self.wrong_fails().values()
        )


def _floor3(probability: float) -> str:
    return f"{int(probability * 1000) / 1000:.3f}"


def states(*claims: Claim):
    """Attach the claims to a Monte Carlo test (checked by tests/test_monte_carlo_claims.py)."""

    def attach(test):
        test.stated_claims = claims
        return test

    return attach


def normalised(text: str) -> str:
    """Whitespace collapsed, for finding a claim's sentence in a wrapped docstring."""
    return " ".join(text.split())
