"""Pareto dominance, fronts and hypervolume over objective values (pure; no Optuna).

Values are tuples in the order of the sweep's objectives, each objective maximised or
minimised (``directions``). Internally every value is turned into a loss (negated when
maximised), so "smaller in every objective" is the one comparison made. One objective
is the length-1 case: its front is the trials sharing the best value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Values = tuple[float, ...]


def holds(violations: Mapping[str, float]) -> bool:
    """Whether every constraint holds: each violation <= 0 (Optuna's convention)."""
    return all(v <= 0 for v in violations.values())


def losses(values: Sequence[float], directions: Sequence[str]) -> Values:
    """``values`` as losses: negated where the objective is maximised."""
    return tuple(-v if d == "maximize" else v for v, d in zip(values, directions, strict=True))


def dominates(a: Values, b: Values) -> bool:
    """Whether losses ``a`` dominate ``b``: no worse in any objective, better in one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def front(points: Sequence[Values]) -> list[int]:
    """The indices of the non-dominated ``points`` (losses), in their order; equal
    points are all on the front (neither dominates the other). In lexicographic order a
    point comes after every point that dominates it, so each is compared only with the
    front found so far: O(n log n + n * front)."""
    kept: list[int] = []
    for i in sorted(range(len(points)), key=lambda k: points[k]):
        if not any(dominates(points[j], points[i]) for j in kept):
            kept.append(i)
    return sorted(kept)


@dataclass(slots=True)
class Front:
    """The Pareto front of the values told so far, kept as they come (the live view's
    and the stop conditions' tally). ``entries`` are (key, values) in told order."""

    directions: tuple[str, ...]
    entries: list[tuple[int, Values]] = field(default_factory=list)

    def add(self, key: int, values: Values) -> bool:
        """Tell one feasible trial's values; True when they improve the front (nothing
        told before is as good in every objective). Points they dominate leave it."""
        new = losses(values, self.directions)
        old = [losses(v, self.directions) for _, v in self.entries]
        if any(dominates(o, new) for o in old):
            return False
        improved = new not in old
        self.entries = [e for e, o in zip(self.entries, old, strict=True) if not dominates(new, o)]
        self.entries.append((key, tuple(values)))
        return improved

    @property
    def best(self) -> float | None:
        """The best value of a single objective (None before any, or with several)."""
        if len(self.directions) != 1 or not self.entries:
            return None
        return self.entries[0][1][0]

    @property
    def keys(self) -> list[int]:
        return sorted(k for k, _ in self.entries)


def reference(points: Iterable[Values], directions: Sequence[str]) -> Values:
    """The default hypervolume reference point: the worst value of each objective among
    ``points`` (values, not losses)."""
    rows = list(points)
    pick = [min if d == "maximize" else max for d in directions]
    return tuple(p(r[i] for r in rows) for i, p in enumerate(pick))


def hypervolume(points: Sequence[Values], ref: Values, directions: Sequence[str]) -> float:
    """The volume of objective space that ``points`` (values) dominate up to ``ref``
    (values): exact, by slicing along the last objective (a staircase in 2-D; fine for 3
    or 4 objectives up to fronts of a hundred or so points). Points not strictly better
    than ``ref`` in every objective add nothing."""
    r = losses(ref, directions)
    pts = [losses(p, directions) for p in points]
    return _volume([p for p in pts if all(x < y for x, y in zip(p, r, strict=True))], r)


def _volume(points: list[Values], ref: Values) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in points)
    kept = [points[i] for i in front(points)]
    if len(ref) == 2:  # a staircase: each point's strip up to the next one's x
        kept.sort()
        ends = [q[0] for q in kept[1:]] + [ref[0]]
        return sum((end - x) * (ref[1] - y) for (x, y), end in zip(kept, ends, strict=True))
    kept.sort(key=lambda p: p[-1])
    total = 0.0
    for i, p in enumerate(kept):
        upper = kept[i + 1][-1] if i + 1 < len(kept) else ref[-1]
        if upper > p[-1]:
            total += (upper - p[-1]) * _volume([q[:-1] for q in kept[: i + 1]], ref[:-1])
    return total
