"""The figures of `report.html`: inline SVG drawn with matplotlib (imported only when a figure is drawn), text kept
as text, no date in the file, so the same outputs give the same bytes. Generic: a bar chart, a funnel, a histogram,
grouped or stacked bars, and the status colours (pass-like green, fail-like red)."""
from __future__ import annotations

import io
import math
from typing import Iterable

from corpora.report_kit import PASS_STATUSES, short

KEPT, REJECTED = "#3a7d44", "#c0392b"
OTHER_COLORS = ("#4c72b0", "#dd8452", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")  # no green/red


def _figure(width: float = 7.0, height: float = 3.2, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "flows-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _hbar(ax, labels: list[str], values: list[float], color: str = "#4c72b0", fmt: str = "{:,.0f}") -> None:
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=color)
    ax.set_yticks(y, [short(lbl, 40) for lbl in labels])
    top = max(values) if values else 0
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, fmt.format(v), va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15 or 1)
    ax.spines[["top", "right"]].set_visible(False)


def _thousands(ax, integer: bool = True) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(4, integer=integer))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if abs(v) >= 1e6 else
                                               f"{v / 1e3:g}k" if abs(v) >= 1e3 else f"{v:g}"))


def _integer_y(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))


def status_colors(statuses: Iterable[str]) -> dict[str, str]:
    """pass-like green, fail-like red, the rest from the default cycle."""
    out, i = {}, 0
    for st in statuses:
        low = st.lower()
        if low in PASS_STATUSES:
            out[st] = KEPT
        elif low in ("fail", "failed", "rejected", "error", "invalid"):
            out[st] = REJECTED
        else:
            out[st], i = OTHER_COLORS[i % len(OTHER_COLORS)], i + 1
    return out


def bar_figure(title: str, counts: dict[str, float], xlabel: str = "rows", top: int = 20, fmt: str = "{:,.0f}",
               sort: bool = True) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:top] if sort else list(counts.items())[:top]
    fig, ax = _figure(height=max(1.6, 0.28 * len(items) + 0.9))
    _hbar(ax, [k for k, _ in items], [v for _, v in items], fmt=fmt)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    _thousands(ax, integer=fmt == "{:,.0f}")
    return _svg(fig)


def funnel_figure(title: str, steps: list[dict]) -> str:
    """steps: {name, docs_in, removed, chars_removed?}: documents left after each step, removed ones beside."""
    names = [s["name"] for s in steps]
    kept = [s["docs_in"] - s["removed"] for s in steps]
    removed = [s["removed"] for s in steps]
    chars = [s.get("chars_removed") for s in steps]
    show_chars = any(c for c in chars)
    fig, axes = _figure(width=9.0 if show_chars else 7.0, height=max(2.0, 0.32 * len(steps) + 1.0),
                        ncols=2 if show_chars else 1)
    ax = axes[0] if show_chars else axes
    y = list(range(len(names)))[::-1]
    ax.barh(y, kept, color=KEPT, label="left after the step")
    ax.barh(y, removed, left=kept, color=REJECTED, label="removed by the step")
    ax.set_yticks(y, names)
    for yi, k, r in zip(y, kept, removed):
        ax.text(k + r, yi, f" -{r:,}" if r else "", va="center", fontsize=8)
    ax.set_xlabel("documents")
    _thousands(ax)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    if show_chars:
        _hbar(axes[1], names, [c or 0 for c in chars], color="#dd8452")
        _thousands(axes[1])
        axes[1].set_yticks([])
        axes[1].set_xlabel("characters removed")
    return _svg(fig)


def histogram_figure(title: str, series: dict[str, list[float]], threshold: float | None = None,
                     xlabel: str = "", sampled: bool = False, bins: int = 30, colors: dict[str, str] | None = None
                     ) -> str:
    import numpy as np

    vals = {k: np.asarray([v for v in vs if v is not None and not (isinstance(v, float) and math.isnan(v))],
                          dtype=float) for k, vs in series.items()}
    vals = {k: v for k, v in vals.items() if v.size}
    allv = np.concatenate(list(vals.values())) if vals else np.zeros(1)
    lo, hi = float(allv.min()), float(allv.max())
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    fig, ax = _figure(width=4.6, height=2.8)
    palette = colors or {}
    for i, (k, v) in enumerate(vals.items()):  # one step artist per series (ax.hist: a patch per bin, 5x slower)
        counts, _ = np.histogram(v, bins=edges)
        color = palette.get(k) or f"C{i}"
        ax.stairs(counts, edges, fill=True, alpha=0.45, color=color, label=f"{k} ({v.size:,})")
        ax.stairs(counts, edges, color=color, linewidth=0.8)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_title(title + (" (sample)" if sampled else ""), fontsize=10)
    ax.set_xlabel(xlabel or title)
    ax.set_ylabel("rows")
    _integer_y(ax)
    ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def grouped_bar_figure(title: str, groups: list[str], series: dict[str, list[float]], ylabel: str = "rows",
                       stacked: bool = False, colors: dict[str, str] | None = None) -> str:
    import numpy as np

    fig, ax = _figure(width=max(5.0, 0.5 * len(groups) * max(1, len(series)) ** 0.5 + 2), height=3.0)
    x = np.arange(len(groups))
    width = 0.8 if stacked else 0.8 / max(1, len(series))
    bottom = np.zeros(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        v = np.asarray(vals, dtype=float)
        color = (colors or {}).get(name)
        if stacked:
            ax.bar(x, v, width, bottom=bottom, label=name, color=color)
            bottom += v
        else:
            ax.bar(x - 0.4 + width * (i + 0.5), v, width, label=name, color=color)
    ax.set_xticks(x, [short(g, 18) for g in groups], rotation=30 if len(groups) > 5 else 0, ha="right"
                  if len(groups) > 5 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    _integer_y(ax)
    ax.set_title(title, fontsize=10)
    if len(series) > 1 or stacked:
        ax.legend(fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)
