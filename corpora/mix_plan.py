"""The mix plan: from the token counts of every kept document, how many copies of each document the mixture takes
so that each group (a source, or a value of a column such as `language`, or a family of values) gets its share
of the token budget.

Per group g with share s_g of budget B: target T_g = s_g * B over A_g available tokens. T_g <= A_g: a seeded
sample of documents whose tokens sum to T_g; T_g > A_g: k = floor(T_g / A_g) full epochs plus a sample for the
rest, so a document appears k or k + 1 times, never more than `max_epochs` (T_g > max_epochs * A_g: the share
cannot be met, and `on_unmet` says what happens: `error` before anything is written, `shrink` the budget until
every share fits, or `cap` the short groups at their cap and report the shortfall). Budget null: the largest
budget that needs no repetition.

The sample: documents in order of a seeded 64-bit priority u = mix(h, seed); the first ones whose tokens stay
under the rest, then (in u order) any that still fit, then the one that lands closest. Out of core: one pass
builds a token histogram over the top 12 bits of u per group (4,096 bins), a second collects only the documents
of the boundary bins; the plan keeps per group the cut bin and the hashes taken past it (a few thousand at most).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Iterable, Literal

import numpy as np
import pyarrow.parquet as pq
import yaml
from pydantic import Field

from corpora.config import StrictModel
from corpora.hashing import short_hash

BIN_BITS = 12
NBINS = 1 << BIN_BITS
ZONE_DOCS = 4096  # documents collected around the cut bin for the fill
DP_CELLS = 50_000_000  # the exact subset sum runs when documents x sums stays under this


class PlanError(ValueError):
    """A plan that cannot be met (or a bad share table): one line naming the group and why."""


class MixPlanConfig(StrictModel):
    by: str = "source"  # what shares are over: `source`, or a column (language, lang, ...)
    families: dict[str, list[str]] = {}  # by a column: {family: [values]}, shares then name families
    shares: dict[str, Annotated[float, Field(ge=0)]] = {}  # {group: share}; by source, a source's own `share` when absent here
    shares_file: str | None = None  # CSV (name,share with a header), YAML or JSON mapping; wins over `shares`
    budget_tokens: int | None = Field(None, ge=1)  # total tokens; null: the largest budget needing no repetition
    max_epochs: float = Field(4.0, gt=0)  # at most this many copies of a document (a source may set its own)
    on_unmet: Literal["error", "shrink", "cap"] = "error"
    tolerance: float = Field(0.01, ge=0, lt=1)  # a delivered total further than this from its target is flagged


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def seed_word(seed: int, purpose: str) -> np.uint64:
    return np.uint64(int(short_hash(str(seed), purpose), 16))


def priority(h: np.ndarray, seed: int) -> np.ndarray:
    """The sampling priority of each document (a document keeps it across runs with the same seed)."""
    return splitmix64(h ^ seed_word(seed, "sample"))


def read_shares_file(path: str) -> dict[str, float]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise PlanError(f"{path}: shares file does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".csv", ".tsv"):
        rows = list(csv.reader(text.splitlines(), delimiter="\t" if p.suffix.lower() == ".tsv" else ","))
        rows = [r for r in rows if r and not r[0].startswith("#")]
        out = {}
        for i, r in enumerate(rows[1:], start=2):
            if len(r) < 2:
                raise PlanError(f"{path}: row {i}: expected name,share")
            try:
                out[r[0].strip()] = float(r[1])
            except ValueError:
                raise PlanError(f"{path}: row {i}: share {r[1]!r} is not a number") from None
        return out
    data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise PlanError(f"{path}: expected a mapping of name: share")
    return {str(k): float(v) for k, v in data.items()}


def resolve_shares(cfg: MixPlanConfig, source_shares: dict[str, float | None]) -> dict[str, float]:
    """Raw shares per group (not normalised): shares_file > shares > the sources' `share` (by source)."""
    shares = dict(cfg.shares)
    if cfg.by != "source":
        given = [n for n, s in source_shares.items() if s is not None]
        if given:
            raise PlanError(f"source '{given[0]}' sets a share, but shares are by '{cfg.by}': name the groups in "
                            f"`shares` / `shares_file`")
    if cfg.by == "source":
        for name, s in source_shares.items():
            if s is not None and name not in shares:
                shares[name] = s
    if cfg.shares_file:
        shares.update(read_shares_file(cfg.shares_file))
    for k, v in shares.items():
        if not (v >= 0 and math.isfinite(v)):
            raise PlanError(f"share of '{k}' is {v}: shares are numbers >= 0")
    if cfg.by == "source":
        missing = [n for n in source_shares if n not in shares]
        if missing:
            raise PlanError(f"source '{missing[0]}' has no share (set its `share`, `shares` or `shares_file`)")
        unknown = [n for n in shares if n not in source_shares]
        if unknown:
            raise PlanError(f"share for '{unknown[0]}', which is not a source (sources: {', '.join(source_shares)})")
    if not shares or sum(shares.values()) <= 0:
        raise PlanError("no group has a share > 0")
    return shares


def group_of(cfg: MixPlanConfig) -> dict[str, str]:
    """Column value -> family, for `by` a column with families."""
    out = {}
    for fam, values in cfg.families.items():
        for v in values:
            if v in out:
                raise PlanError(f"value '{v}' is in two families ('{out[v]}', '{fam}')")
            out[v] = fam
    return out


@dataclass
class GroupPlan:
    name: str
    share: float  # normalised
    share_given: float
    max_epochs: float
    available_tokens: int = 0
    available_docs: int = 0
    available_bytes: int = 0
    target_tokens: int = 0
    full_epochs: int = 0
    rest_tokens: int = 0
    cut_bin: int = 0  # documents with u's bin below this are in the partial epoch
    taken: list[int] = field(default_factory=list)  # hashes past the cut bin also in it
    delivered_tokens: int = 0
    partial_docs: int = 0
    status: str = "ok"  # ok, unmet, capped, outside_tolerance
    note: str = ""

    @property
    def rows(self) -> int:
        return self.full_epochs * self.available_docs + self.partial_docs

    @property
    def max_copies(self) -> int:
        return self.full_epochs + (1 if self.partial_docs else 0)

    def summary(self, budget: int) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("taken", "cut_bin")}
        d.update(rows=self.rows, max_copies=self.max_copies,
                 epochs=round(self.target_tokens / self.available_tokens, 4) if self.available_tokens else None,
                 delivered_share=round(self.delivered_tokens / budget, 6) if budget else 0.0,
                 error=round((self.delivered_tokens - self.target_tokens) / self.target_tokens, 6)
                 if self.target_tokens else 0.0)
        return d


@dataclass
class MixPlan:
    groups: dict[str, GroupPlan]
    budget: int
    budget_given: int | None
    seed: int
    dropped: dict[str, dict]  # group values without a share: docs, tokens
    notes: list[str]
    families: dict[str, str] = field(default_factory=dict)
    by_source: bool = True

    def copies(self, h: np.ndarray, groups: list) -> np.ndarray:
        """Copies in the mixture of each document (its hash and its group value as the index stores it)."""
        out = np.zeros(len(h), dtype=np.int32)
        if not len(h):
            return out
        bins = (priority(h, self.seed) >> np.uint64(64 - BIN_BITS)).astype(np.int64)
        vals = ["(null)" if x is None else x for x in groups]
        if self.families and not self.by_source:
            vals = [self.families.get(x, x) for x in vals]
        garr = np.asarray(vals, dtype=str)
        for name in np.unique(garr):
            g = self.groups.get(name)
            if g is None:
                continue
            m = garr == name
            part = bins[m] < g.cut_bin
            if g.taken:
                part |= np.isin(h[m], np.asarray(g.taken, dtype=np.uint64))
            out[m] = g.full_epochs + part.astype(np.int32)
        return out

    @property
    def key(self) -> str:
        return short_hash(json.dumps({n: [g.full_epochs, g.cut_bin, g.taken] for n, g in self.groups.items()},
                                     sort_keys=True), str(self.seed), length=16)

    def summary(self) -> dict:
        return {"budget_tokens": self.budget, "budget_given": self.budget_given, "seed": self.seed,
                "delivered_tokens": sum(g.delivered_tokens for g in self.groups.values()),
                "groups": {n: g.summary(self.budget) for n, g in self.groups.items()},
                "dropped_groups": self.dropped, "notes": self.notes}


def _batches(index_files: Iterable[Path], columns: list[str]):
    for f in index_files:
        pf = pq.ParquetFile(f)
        for b in pf.iter_batches(batch_size=65536, columns=columns):
            yield b


def _group_names(batch, families: dict[str, str], by_source: bool) -> np.ndarray:
    vals = batch.column("group").to_pylist()
    if families and not by_source:
        vals = [families.get(x, x) if x is not None else None for x in vals]
    return np.asarray(["(null)" if x is None else x for x in vals], dtype=str)


def make_plan(cfg: MixPlanConfig, index_files: list[Path], source_shares: dict[str, float | None],
              source_caps: dict[str, float | None], seed: int) -> MixPlan:
    """The plan over the count stage's index files (streamed twice). Raises PlanError when a share cannot be met
    and `on_unmet` is `error`, before anything is written."""
    by_source = cfg.by == "source"
    raw = resolve_shares(cfg, source_shares)
    total = sum(raw.values())
    fam = group_of(cfg)
    groups = {n: GroupPlan(n, v / total, v, (source_caps.get(n) if by_source else None) or cfg.max_epochs)
              for n, v in raw.items()}
    hist = {n: np.zeros(NBINS, dtype=np.int64) for n in groups}
    hcount = {n: np.zeros(NBINS, dtype=np.int64) for n in groups}
    dropped: dict[str, dict] = {}
    for b in _batches(index_files, ["h", "tokens", "bytes", "group"]):
        names = _group_names(b, fam, by_source)
        h = b.column("h").to_numpy()
        tok = b.column("tokens").to_numpy().astype(np.int64)
        nb = b.column("bytes").to_numpy()
        bins = (priority(h, seed) >> np.uint64(64 - BIN_BITS)).astype(np.int64)
        for name in np.unique(names):
            m = names == name
            g = groups.get(name)
            if g is None:
                d = dropped.setdefault(str(name), {"docs": 0, "tokens": 0})
                d["docs"] += int(m.sum())
                d["tokens"] += int(tok[m].sum())
                continue
            g.available_docs += int(m.sum())
            g.available_tokens += int(tok[m].sum())
            g.available_bytes += int(nb[m].sum())
            hist[name] += np.bincount(bins[m], weights=tok[m], minlength=NBINS).astype(np.int64)
            hcount[name] += np.bincount(bins[m], minlength=NBINS)
    notes: list[str] = []
    if abs(total - 1.0) > 1e-9:
        notes.append(f"shares given sum to {total:g}; normalised to 1")
    live = [g for g in groups.values() if g.share > 0]
    empty = [g for g in live if g.available_tokens == 0]
    budget = cfg.budget_tokens
    if budget is None:
        if empty:
            raise PlanError(f"group '{empty[0].name}' has share {empty[0].share_given:g} but no tokens after its "
                            f"rules: no budget can meet it")
        budget = int(min(g.available_tokens / g.share for g in live))
        notes.append(f"budget: the largest with no repetition, {budget:,} tokens (set budget_tokens to choose)")
    unmet = [g for g in live if g.share * budget > g.max_epochs * g.available_tokens + 0.5]
    if unmet and cfg.on_unmet == "error":
        raise PlanError("mix plan cannot be met: " + "; ".join(_unmet_line(g, budget) for g in unmet)
                        + f" ({_options(live, budget)})")
    if unmet and cfg.on_unmet == "shrink":
        if empty:
            raise PlanError(f"group '{empty[0].name}' has no tokens after its rules: shrinking cannot meet it")
        new = int(min(g.max_epochs * g.available_tokens / g.share for g in live))
        notes.append(f"budget shrunk from {budget:,} to {new:,} tokens so that every share fits within its cap "
                     f"({', '.join(g.name for g in unmet)} short)")
        budget = new
    for g in groups.values():
        target = int(round(g.share * budget))
        if target > g.max_epochs * g.available_tokens:
            g.status, g.note = "capped", _unmet_line(g, budget)
            target = int(math.floor(g.max_epochs * g.available_tokens))
        g.target_tokens = target
        if target == 0 or g.available_tokens == 0:
            continue
        g.full_epochs, g.rest_tokens = divmod(target, g.available_tokens)
    zones = {}
    for g in groups.values():
        if g.rest_tokens <= 0:
            continue
        cum = np.cumsum(hist[g.name])
        b = int(np.searchsorted(cum, g.rest_tokens, side="right"))  # first bin whose end passes the rest
        b0, n = b, 0  # the fill zone: about ZONE_DOCS / 2 documents either side of the boundary
        while b0 > 0 and n < ZONE_DOCS // 2:
            b0 -= 1
            n += int(hcount[g.name][b0])
        e, n = b, 0
        while e < NBINS and n < ZONE_DOCS // 2:
            n += int(hcount[g.name][e])
            e += 1
        g.cut_bin = b0
        zones[g.name] = (b0, e, int(cum[b0 - 1]) if b0 > 0 else 0)
    if zones:
        coll: dict[str, list] = {n: [] for n in zones}
        for bt in _batches(index_files, ["h", "tokens", "group"]):
            names = _group_names(bt, fam, by_source)
            h = bt.column("h").to_numpy()
            u = priority(h, seed)
            bins = (u >> np.uint64(64 - BIN_BITS)).astype(np.int64)
            tok = bt.column("tokens").to_numpy()
            for name, (b, e, _) in zones.items():
                m = (names == name) & (bins >= b) & (bins < e)
                if m.any():
                    coll[name].append((u[m], h[m], tok[m]))
        for name, (b, e, prefix) in zones.items():
            g = groups[name]
            parts = coll[name]
            u = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
            h = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint64)
            tok = np.concatenate([p[2] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
            order = np.lexsort((h, u))
            deficit = g.rest_tokens - prefix
            taken, chosen = [], np.zeros(len(order), dtype=bool)
            for i in order:
                if deficit <= 0:
                    break
                if tok[i] <= deficit:
                    taken.append(int(h[i]))
                    chosen[i] = True
                    deficit -= int(tok[i])
            left = [int(i) for i in order if not chosen[i]]
            if deficit > 0 and left:  # the smallest overshoot, if it lands closer than stopping short
                j = min(left, key=lambda i: tok[i])
                if tok[j] - deficit < deficit:
                    taken.append(int(h[j]))
                    left.remove(j)
                    deficit -= int(tok[j])
            for _ in range(8):  # swaps (a taken document for a left one) while one lands closer
                if not (deficit and left and taken):
                    break
                lt = np.array(sorted(int(tok[i]) for i in left), dtype=np.int64)
                tok_of = {int(h[i]): int(tok[i]) for i in order}
                best = (abs(deficit), None, None)
                for th in taken:
                    want = deficit + tok_of[th]
                    k = int(np.searchsorted(lt, want))
                    for c in (k - 1, k):
                        if 0 <= c < len(lt) and abs(want - int(lt[c])) < best[0]:
                            best = (abs(want - int(lt[c])), th, int(lt[c]))
                if best[1] is None:
                    break
                in_i = next(i for i in left if int(tok[i]) == best[2])
                taken.remove(best[1])
                left.remove(in_i)
                left.append(int(np.flatnonzero(h == np.uint64(best[1]))[0]))
                taken.append(int(h[in_i]))
                deficit += tok_of[best[1]] - best[2]
            need = g.rest_tokens - prefix
            if abs(deficit) > cfg.tolerance * g.target_tokens / 2 and len(order) and \
                    len(order) * (need + int(tok.max()) + 1) <= DP_CELLS:
                best = _closest_subset(tok[order], need)  # few, large documents: an exact subset sum
                if abs(need - best[0]) < abs(deficit):
                    taken = [int(h[order[i]]) for i in best[1]]
                    deficit = need - best[0]
            g.taken = sorted(taken)
            g.delivered_tokens = g.full_epochs * g.available_tokens + g.rest_tokens - deficit
            g.partial_docs = int(hcount[name][:b].sum()) + len(taken)
    for g in groups.values():
        if not g.rest_tokens:
            g.delivered_tokens = g.full_epochs * g.available_tokens
        if g.status == "ok" and g.target_tokens and abs(g.delivered_tokens - g.target_tokens) > \
                cfg.tolerance * g.target_tokens:
            g.status = "outside_tolerance"
            g.note = (f"delivered {g.delivered_tokens:,} of {g.target_tokens:,} tokens: its documents are too "
                      f"large or too few to land within {cfg.tolerance:.1%}")
    off = [g for g in groups.values() if g.status == "outside_tolerance"]
    if off and cfg.on_unmet == "error":  # outside its tolerance is unmet: refuse before anything is written
        raise PlanError("mix plan cannot be met: " + "; ".join(f"'{g.name}' {g.note}" for g in off)
                        + " (on_unmet=cap accepts it, or raise tolerance / budget_tokens)")
    return MixPlan(groups, budget, cfg.budget_tokens, seed, dropped, notes, fam, by_source)


def _closest_subset(tok: np.ndarray, need: int) -> tuple[int, list[int]]:
    """The subset of `tok` (in the order given: earlier items are preferred) whose sum is closest to `need`:
    (sum, indices). Dynamic programming over reachable sums; `who[s]` = the item that first reached s."""
    size = need + int(tok.max()) + 1
    reach = np.zeros(size, dtype=bool)
    reach[0] = True
    who = np.full(size, -1, dtype=np.int32)
    for i, t in enumerate(tok.astype(np.int64)):
        if t <= 0 or t >= size:
            continue
        new = np.zeros(size, dtype=bool)
        new[t:] = reach[:-t]
        new &= ~reach
        who[new] = i
        reach |= new
    sums = np.flatnonzero(reach)
    best = int(sums[np.argmin(np.abs(sums - need))])
    out, s = [], best
    while s > 0:
        i = int(who[s])
        out.append(i)
        s -= int(tok[i])
    return best, out[::-1]


def _unmet_line(g: GroupPlan, budget: int) -> str:
    need = g.share * budget
    if not g.available_tokens:
        return f"'{g.name}' needs {need:,.0f} tokens (share {g.share:.4g} of {budget:,}) and has none after its rules"
    return (f"'{g.name}' needs {need:,.0f} tokens (share {g.share:.4g} of {budget:,}), has {g.available_tokens:,} "
            f"after its rules: {need / g.available_tokens:.2f} epochs > max_epochs {g.max_epochs:g}")


def _options(live: list[GroupPlan], budget: int) -> str:
    if any(g.available_tokens == 0 for g in live):
        return "give that group documents, or its share 0"
    fit = int(min(g.max_epochs * g.available_tokens / g.share for g in live))
    return (f"on_unmet=shrink lowers the budget to {fit:,} tokens, on_unmet=cap delivers the short groups at their "
            f"cap, or raise max_epochs / budget_tokens")
