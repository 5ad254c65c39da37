"""Preference statistics of a two-alternative forced-choice study.

For each compared pair (A, B) and quality: n judgements, A's wins, the preference
rate for A with its 95% Clopper–Pearson (exact binomial) interval, the two-sided
exact binomial test of "no preference" (rate 0.5), and Holm's step-down
adjustment of those p-values over all the pair × quality rows of a report. Every
judgement counts as an independent Bernoulli trial: with several participants
judging the same items that is the usual, slightly optimistic, convention.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable

from scipy import stats as scipy_stats

CONFIDENCE = 0.95
INTERVAL = "Clopper-Pearson (exact binomial)"


@dataclasses.dataclass(frozen=True)
class Preference:
    """A's wins out of n against B, with the rate, its interval and the test."""

    wins: int
    n: int
    rate: float
    low: float
    high: float
    p_value: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def preference(wins: int, n: int) -> Preference:
    """The rate wins / n, its 95% Clopper–Pearson interval and the two-sided exact
    binomial p-value against 0.5 (n = 0: no rate, interval [0, 1], p = 1)."""
    if not 0 <= wins <= n:
        raise ValueError(f"wins must be in 0..n, got {wins} of {n}")
    if n == 0:
        return Preference(0, 0, float("nan"), 0.0, 1.0, 1.0)
    test = scipy_stats.binomtest(wins, n, 0.5, alternative="two-sided")
    interval = test.proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return Preference(wins, n, wins / n, interval.low, interval.high, float(test.pvalue))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over all the tests), in
    the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclasses.dataclass(frozen=True)
class Answer:
    """One recorded choice: the pair (A, B), the quality, the version chosen, the side
    it was on and the response time (ms, client-side; None without JavaScript)."""

    participant: str
    pair: tuple[str, str]
    quality: int
    chosen: str
    side: str
    response_ms: float | None


def summarise(answers: Iterable[Answer], pairs: list[tuple[str, str]], qualities: list[int]):
    """Rows per (pair, quality) and per pair over all qualities, Holm-adjusted over
    the per-quality rows; plus the side bias (share of left choices)."""
    answers = list(answers)
    rows = []
    for pair in pairs:
        for quality in [*qualities, None]:
            chosen = [
                a for a in answers if a.pair == pair and (quality is None or a.quality == quality)
            ]
            result = preference(sum(a.chosen == pair[0] for a in chosen), len(chosen))
            times = [a.response_ms for a in chosen if a.response_ms is not None]
            rows.append(
                {
                    "a": pair[0],
                    "b": pair[1],
                    "quality": quality if quality is not None else "all",
                    **result.as_dict(),
                    "participants": len({a.participant for a in chosen}),
                    "median_response_ms": statistics.median(times) if times else None,
                }
            )
    tested = [row for row in rows if row["quality"] != "all" and row["n"]]
    for row, adjusted in zip(tested, holm([row["p_value"] for row in tested])):
        row["p_holm"] = adjusted
    left = preference(sum(a.side == "left" for a in answers), len(answers))
    return rows, {"left_choices": left.as_dict()}
