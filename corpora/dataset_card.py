"""The `README.md` dataset card of an output folder, in the Hugging Face format: a YAML header (license, task
categories, languages, size, and one `configs` entry per output kind with its `data_files`, the default config =
`data/`), then how to load it, the outputs with their rows and schema, the funnel, lineage (inputs with sha256,
models, sampling) and the config. `datasets.load_dataset(DIR)` reads the header, so it loads the kept rows and a
hub upload of the folder needs nothing more.

Pure: text from the manifest, stats and per-kind file lists / rows / schemas (`flows/run_report.py` reads them)."""
from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import yaml

from corpora.layout import Layout

TASKS = {
    "dolma": ["text-generation"], "dedup": ["text-generation"], "textbooks": ["text-generation"],
    "ensemble-instruct": ["text-generation", "question-answering"],
    "impossible-distillation": ["text2text-generation"], "diachronic": ["text-generation", "text-classification"],
    "sphinx": ["translation", "text-generation"], "mix": ["text-generation"],
}
DESCRIPTIONS = {
    "dolma": "Web documents curated Dolma-style (language ID, Gopher, C4, FineWeb, PII, toxicity, dedup).",
    "dedup": "Documents after URL, exact, paragraph and MinHash deduplication (and decontamination).",
    "textbooks": "Synthetic textbook-style texts (phi / Cosmopedia recipe), post-processed with the dolma steps.",
    "ensemble-instruct": "Synthetic instruction data (Ensemble-Instruct: instructions, instances, voter consensus).",
    "impossible-distillation": "Paraphrase / summary pairs distilled from a small LM (Impossible Distillation).",
    "diachronic": "Dated works and time-sliced paragraph corpora (one config per slice, splits train/dev/test).",
    "sphinx": "Multilingual instruction data translated per language (sPhinX), with pass/fail per row.",
}
GENERATED = {"textbooks", "ensemble-instruct", "impossible-distillation", "sphinx"}


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "n>1B"


def _patterns(files: list[str]) -> list[str]:
    """One `<folder>/*.parquet` per folder holding the kind's files (exact, also for `data/lang=<xx>/`)."""
    return sorted({f"{PurePosixPath(f).parent.as_posix()}/*.parquet" for f in files})


# unlearning-split's TOFU package: a kind `tofu/<name>` named as one of TOFU's own configurations (the locuslab/TOFU
# card: full, forgetNN, retainNN, holdoutNN, forgetNN_perturbed, retain_perturbed, ...) is that config, so
# `load_dataset(DIR, "forget10")` reads it as TOFU's loader does (data_module.py: load_dataset(path, split)["train"])
TOFU_CONFIGS = ("full", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


def _tofu_config(kind: str) -> str | None:
    name = kind[len("tofu/"):] if kind.startswith("tofu/") else ""
    base = name[:-len("_perturbed")] if name.startswith("forget") and name.endswith("_perturbed") else name
    numbered = base[:-2] in ("forget", "retain", "holdout") and base[-2:].isdigit()
    return name if name in TOFU_CONFIGS or numbered else None


def card_configs(kinds: dict[str, dict], layout: Layout | None = None) -> list[dict]:
    """`configs` entries: one per output kind with rows (split `train`); split kinds of the run's `layout`
    (`corpora/layout.py`; e.g. `slices/1750_1820/train`) are one config `<group>` with those splits, plus one config
    for all groups of a prefix (`slices`). The default config is `data` (named `default`), else that combined one,
    else the first. Each entry's `_kinds` lists the output kinds it covers (dropped from the YAML)."""
    configs: dict[str, dict[str, list[str]]] = {}
    covers: dict[str, list[str]] = {}
    combined: dict[str, dict[str, list[str]]] = {}
    layout = layout or Layout(())
    for kind, info in kinds.items():
        if not info.get("rows") or not info.get("files"):
            continue  # a pattern that matches no file fails `load_dataset` for that config
        name, split, group = layout.card_config(kind)
        if group is not None:
            combined.setdefault(group, {}).setdefault(split, []).extend(_patterns(info["files"]))
            covers.setdefault(group, []).append(kind)
        name = _tofu_config(kind) or name
        configs.setdefault(name, {}).setdefault(split, []).extend(_patterns(info["files"]))
        covers.setdefault(name, []).append(kind)
    for name, splits in combined.items():
        if name not in configs:
            configs[name] = splits
    default = "data" if "data" in configs else next(iter(combined), None) or next(iter(configs), None)
    out = []
    for name, splits in configs.items():
        entry: dict[str, Any] = {"config_name": "default" if name == "data" else name}
        if name == default:
            entry["default"] = True
        entry["data_files"] = [{"split": sp, "path": sorted(set(p))} for sp, p in splits.items()]
        entry["_kinds"] = covers.get(name, [])
        out.append(entry)
    out.sort(key=lambda e: not e.get("default"))
    return out


def _models(stats: dict) -> list[dict]:
    rounds = (stats.get("generation") or {}).get("rounds") or {}
    return [{"round": n, "backend": r.get("backend"), "model": r.get("model"), "requests": r.get("requests"),
             "completion_tokens": r.get("completion_tokens")} for n, r in rounds.items()]


def _sampling(config: Any, path: str = "") -> dict[str, Any]:
    """Every `*sampling*` block of the config (textbooks' `sampling`, impossible's `contexts_sampling`, ...)."""
    found: dict[str, Any] = {}
    if isinstance(config, dict):
        for k, v in config.items():
            p = f"{path}.{k}" if path else k
            if "sampling" in k and isinstance(v, dict):
                found[p] = v
            else:
                found.update(_sampling(v, p))
    return found


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(c: Any) -> str:
        if isinstance(c, bool) or c is None:
            return "" if c is None else str(c)
        if isinstance(c, int):
            return f"{c:,}"
        if isinstance(c, float):
            return f"{c:.4g}"
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _funnel(stats: dict) -> list[str]:
    out = []
    for title, filters, dedup in (("Filters and dedup", stats.get("filters"), stats.get("dedup")),
                                  ("Post-processing of the generated rows",
                                   (stats.get("postprocess") or {}).get("filters"),
                                   (stats.get("postprocess") or {}).get("dedup"))):
        rows = [[name, s.get("docs_in"), s.get("removed"), s.get("chars_removed"),
                 ", ".join(f"{r} {n}" for r, n in (s.get("rules") or {}).items())]
                for src, prefix in ((filters, ""), (dedup, "dedup:")) if isinstance(src, dict)
                for name, s in ((prefix + k, v) for k, v in src.items()) if isinstance(s, dict) and "docs_in" in s]
        if rows:
            out += [f"### {title}", "", _md_table(["step", "docs in", "removed", "chars removed", "rules"], rows), ""]
    removed = (stats.get("postprocess") or {}).get("removed")
    if removed:
        out += ["Rejected by reason: " + ", ".join(f"`{k}` {v:,}" for k, v in removed.items()), ""]
    models = _models(stats)
    if models:
        out += ["### Generation rounds", "", _md_table(["round", "backend", "model", "requests", "completion tokens"],
                                                       [list(m.values()) for m in models]), ""]
    works = stats.get("works")
    if isinstance(works, dict) and "by_slice" in works:
        out += ["### Works", "", f"{works.get('works', 0):,} works, {works.get('dated', 0):,} dated, "
                f"{works.get('undated', 0):,} undated; per slice: "
                + ", ".join(f"{k} {v:,}" for k, v in works["by_slice"].items()), ""]
    return out


def render_card(manifest: dict, stats: dict, kinds: dict[str, dict], *, languages: list[str] | None = None,
                license: str | None = None, task_categories: list[str] | None = None,
                layout: Layout | None = None) -> str:
    """`kinds`: output kind -> {files (relative paths), rows, bytes, schema [(name, type)]}; `layout`: the run's
    (`corpora/layout.py`: its split kinds' configs)."""
    pipeline = manifest.get("pipeline") or "dataset"
    config = manifest.get("config") or {}
    lic = license or config.get("license") or (config.get("card") or {}).get("license") or "other"
    tasks = task_categories or TASKS.get(pipeline, ["text-generation"])
    if pipeline == "impossible-distillation" and config.get("mode") == "summary":
        tasks = ["summarization"]
    configs = card_configs(kinds, layout)
    main = next((c for c in configs if c.get("default")), None)
    main_kind = "data" if "data" in kinds else None
    n_main = kinds.get(main_kind, {}).get("rows", 0) if main_kind else sum(k.get("rows", 0) for k in kinds.values())
    header: dict[str, Any] = {"license": lic, "task_categories": tasks}
    if languages:
        header["language"] = list(languages)
    header["size_categories"] = [size_category(n_main)]
    header["pretty_name"] = f"{pipeline} ({manifest.get('config_hash', 'run')})"
    header["tags"] = ["flows-data-engine", pipeline] + (["synthetic"] if pipeline in GENERATED else [])
    header["configs"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in configs]
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {pipeline} output", "", DESCRIPTIONS.get(pipeline, f"Output of the `{pipeline}` pipeline."), "",
             f"Written by flows-data-engine {manifest.get('package_version', '?')} (`flows run {pipeline}`), "
             f"status `{manifest.get('status', 'unknown')}`, {manifest.get('started', '?')} – "
             f"{manifest.get('finished', '?')}, config hash `{manifest.get('config_hash', '?')}`. "
             "`report.html` beside this card has the figures.", "", "## Loading", "", "```python",
             "from datasets import load_dataset", ""]
    if main:
        lines.append(f'ds = load_dataset("path/to/this/folder")  # the `{main["config_name"]}` config')
    for c in configs:
        if not c.get("default"):
            lines.append(f'other = load_dataset("path/to/this/folder", "{c["config_name"]}")')
            break
    lines += ["```", "", "## Outputs", "",
              _md_table(["config", "files", "rows", "shards", "bytes"],
                        [[c["config_name"], ", ".join(f"`{p}`" for d in c["data_files"] for p in d["path"]),
                          sum(kinds[k]["rows"] for k in c["_kinds"]), sum(len(kinds[k]["files"]) for k in c["_kinds"]),
                          sum(kinds[k].get("bytes", 0) for k in c["_kinds"])] for c in configs]), ""]
    empty = [k for k, v in kinds.items() if not v.get("rows")]
    if empty:
        lines += ["Empty outputs (no config): " + ", ".join(f"`{k}/`" for k in empty), ""]
    inv = stats.get("invariant")
    if inv:
        lines += ["Row accounting: " + ", ".join(f"{k} {v}" for k, v in inv.items()), ""]
    lines += ["## Schema", ""]
    shown: set[tuple] = set()
    for kind, info in kinds.items():
        sig = tuple(info.get("schema") or ())
        if not sig:
            continue
        if sig in shown:
            lines += [f"`{kind}/`: same columns as above.", ""]
            continue
        shown.add(sig)
        lines += [f"### `{kind}/`", "", _md_table(["column", "type"], [[f"`{n}`", t] for n, t in sig]), ""]
    funnel = _funnel(stats)
    if funnel:
        lines += ["## Funnel", "", *funnel]
    lines += ["## Lineage", ""]
    inputs = manifest.get("inputs") or []
    if inputs:
        cols = [c for c in ("path", "sha256", "records", "kept", "rejected", "quarantined") if any(c in i for i in inputs)]
        lines += ["### Inputs", "", _md_table(cols, [[i.get(c) for c in cols] for i in inputs]), ""]
    else:
        lines += ["Inputs: none recorded (the bundled sample or topics only).", ""]
    models = _models(stats)
    if models:
        lines += ["### Models", "", _md_table(["round", "backend", "model"],
                                              [[m["round"], m["backend"], m["model"]] for m in models]), ""]
    sampling = _sampling(config)
    if sampling:
        lines += ["### Sampling", "", "```json", json.dumps(sampling, indent=2, sort_keys=True), "```", ""]
    lines += ["## Config", "", "The full effective config of the run (`flows run "
              f"{pipeline} --config <this block as YAML>` repeats it):", "", "```yaml",
              yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip(), "```", "",
              "## License", "", f"`{lic}`" + (" (the default: set the license of your inputs with the config's "
                                              "`license` key)" if lic == "other" else "") + ".", ""]
    return "\n".join(lines)
