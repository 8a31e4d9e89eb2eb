"""Time slices: the diachronic paper's five periods, and which slice a year falls in.

A slice "1820_1850" holds years 1820..1849 (start inclusive, end exclusive), except the last slice of a list,
which also holds its end year, so that 1940 belongs to 1910_1940 and every year from 1750 to 1940 has a slice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Slice:
    start: int
    end: int

    @property
    def name(self) -> str:
        return f"{self.start}_{self.end}"

    @property
    def midpoint(self) -> float:
        return (self.start + self.end) / 2


DEFAULT_SLICES: tuple[Slice, ...] = (
    Slice(1750, 1820), Slice(1820, 1850), Slice(1850, 1880), Slice(1880, 1910), Slice(1910, 1940),
)


def parse_slice_name(name: str) -> Slice | None:
    """"1820_1850" (or "1820-1850") -> Slice(1820, 1850); anything else -> None."""
    m = re.fullmatch(r"\s*(\d{3,4})\s*[_\-–]\s*(\d{3,4})\s*", name or "")
    if not m:
        return None
    a, b = int(m.group(1)), int(m.group(2))
    return Slice(a, b) if a < b else None


def slice_of(year: int | None, slices: tuple[Slice, ...] | list[Slice] = DEFAULT_SLICES) -> Slice | None:
    if year is None:
        return None
    ordered = sorted(slices)
    for i, sl in enumerate(ordered):
        if sl.start <= year < sl.end or (i == len(ordered) - 1 and year == sl.end):
            return sl
    return None
