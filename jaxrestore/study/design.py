"""The study's design: which pairs are compared, on which side each version is shown,
and in which order a participant sees the trials.

Everything here but the pictures' names is a function of the study's seed (and,
for the order, of the participant's id), so a study can be rebuilt and audited from
study.json alone; the names are keyed by a secret so that they cannot be
recomputed (study.json records them).

Placement is balanced, not merely random: for each compared pair and quality the
first version of the pair is on the left in half of the items (the odd one out,
when the count is odd, alternates between qualities), so each version of a pair
is shown as often on the left as on the right — to within one trial per quality
and per pair — and a participant's preference for a side cannot pass for a
preference for a method.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import random

COMPRESSED = "compressed"  # the version every method is compared against
ORIGINAL = "original"  # shown only as the reference, never in a pair


def comparisons(methods: list[str]) -> list[tuple[str, str]]:
    """The compared pairs (A, B): every method against the compressed version, then
    every two methods in the order given (A is the earlier one)."""
    pairs = [(method, COMPRESSED) for method in methods]
    return pairs + list(itertools.combinations(methods, 2))


@dataclasses.dataclass(frozen=True)
class Trial:
    """One side-by-side judgement: `item` at `quality`, `pair` = (A, B) with A shown on
    the left when `a_left`."""

    id: str
    item: str
    quality: int
    pair: tuple[str, str]
    a_left: bool

    @property
    def left(self) -> str:
        return self.pair[0] if self.a_left else self.pair[1]

    @property
    def right(self) -> str:
        return self.pair[1] if self.a_left else self.pair[0]


def seeded(*parts: object) -> random.Random:
    """A generator seeded by a stable digest of `parts` (Python's own hash() of a
    string changes from run to run)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def balanced_sides(count: int, odd_left: bool, rng: random.Random) -> list[bool]:
    """`count` placements (True: A on the left), half each way in a random order; when
    `count` is odd the extra one is left if `odd_left`."""
    left = count // 2 + (count % 2 if odd_left else 0)
    sides = [True] * left + [False] * (count - left)
    rng.shuffle(sides)
    return sides


def build_trials(
    items: list[str], qualities: list[int], methods: list[str], seed: int
) -> list[Trial]:
    """Every (item, quality, pair) once, with balanced placement, in a seeded random
    order; ids number the trials in that order, so an id tells nothing of its pair."""
    rng = seeded("placement", seed)
    planned = []
    for pair in comparisons(methods):
        odd_left = rng.random() < 0.5  # who gets the extra trial, alternating by quality
        for quality in qualities:
            sides = balanced_sides(len(items), odd_left, rng)
            if len(items) % 2:
                odd_left = not odd_left
            planned += [(item, quality, pair, a_left) for item, a_left in zip(items, sides)]
    seeded("order", seed).shuffle(planned)
    width = len(str(len(planned)))
    return [
        Trial(f"t{index:0{width}d}", item, quality, pair, a_left)
        for index, (item, quality, pair, a_left) in enumerate(planned, 1)
    ]


def participant_order(trial_ids: list[str], participant: str, seed: int) -> list[str]:
    """The order in which `participant` sees the trials: a shuffle seeded by the study's
    seed and the participant's id (the same id always gets the same order)."""
    order = list(trial_ids)
    seeded("participant", seed, participant).shuffle(order)
    return order


def image_name(key: str, item: str, quality: int | None, version: str, pixels: bytes) -> str:
    """An opaque file name for one picture: nothing in a URL or the page says which
    version it is. `key` is the study's secret (prepare draws it at random and keeps it
    nowhere), so nobody holding a picture can recompute its name for each version and
    see which one matches. The pixels are part of the digest, so a study rebuilt with
    other pictures never gets a name a browser may still hold in its cache."""
    digest = hashlib.sha256(f"{key}:{item}:{quality}:{version}:".encode() + pixels)
    return f"{digest.hexdigest()[:20]}.png"
