"""What a benchmark hands back: the figures it measured, and its targets judged on them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Target:
    """``measured`` against ``limit``: at most (``inclusive``) or under it."""

    label: str
    measured: float
    limit: float
    unit: str
    inclusive: bool = True

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.inclusive else self.measured < self.limit

    def line(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        relation = "≤" if self.inclusive else "<"
        return (
            f"{verdict}  {self.label}: {_number(self.measured)}{self.unit} "
            f"(target {relation} {_number(self.limit)}{self.unit})"
        )


@dataclass
class Report:
    title: str
    figures: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def figure(self, text: str) -> None:
        self.figures.append(text)

    def target(
        self, label: str, measured: float, limit: float, unit: str = "", *, inclusive: bool = True
    ) -> Target:
        judged = Target(label, measured, limit, unit, inclusive)
        self.targets.append(judged)
        return judged

    @property
    def passed(self) -> bool:
        return all(target.passed for target in self.targets)


@dataclass(frozen=True, slots=True)
class Spread:
    """Percentiles of a set of timings, in milliseconds."""

    samples: int
    p50: float
    p90: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Spread:
        if len(seconds) < 2:
            raise ValueError("percentiles need at least two samples")
        cuts = statistics.quantiles([s * 1000 for s in seconds], n=10, method="inclusive")
        return cls(samples=len(seconds), p50=cuts[4], p90=cuts[8])

    def line(self, label: str, note: str = "") -> str:
        text = f"{label:<40} n={self.samples:<5} p50 {ms(self.p50)}  p90 {ms(self.p90)}"
        return f"{text}  {note}" if note else text


def ms(milliseconds: float) -> str:
    return f"{milliseconds:8.3f} ms" if milliseconds < 100 else f"{milliseconds:8.1f} ms"


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
