"""One piece of dating evidence: what it says about the year of first publication/composition, how far to trust
it, and where it came from (so every date in the output can be traced back to the text or table it came from).

Roles say how the combiner reads it:
  point  - "the work is from about `year`" (copyright line, "first published", preface signature, metadata)
  range  - "the work is from `low`..`high`" (years in a collection's title, a dated table of contents)
  upper  - "the work existed by `high`": a later edition's date, a reprint's title page (first edition <= high);
           `detail.likely_exact` (a bare title-page year) or `detail.existed_by` (another work lists it: no year
           before `high` favoured) say how the combiner reads it
  lower  - "the work was written after `low`": the latest year the text mentions, dated letters
  dist   - a distribution over slices (style classifier), carried in `detail["slice_probs"]`
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ROLES = ("point", "range", "upper", "lower", "dist")


@dataclass(frozen=True)
class Evidence:
    kind: str  # what extractor produced it: "copyright", "first_published", "preface_date", ...
    role: str  # one of ROLES
    year: int | None = None
    low: int | None = None
    high: int | None = None
    confidence: float = 0.5  # probability this evidence is about the work's first publication at all
    source: str = ""  # where it was found: "text@1234", "metadata.csv row 7", "authors table", "style model"
    snippet: str = ""  # the words it was read from, for humans checking the output
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown evidence role {self.role!r} (expected one of {ROLES})")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v not in (None, "", {})}
