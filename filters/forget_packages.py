"""`unlearning-split`'s packages: what the flow reads (inputs, the bundled demo spec, the corpus), the tables it
publishes in order (forget / retain / holdout, quarantine, the TOFU / MUSE / verbmem / knowmem layouts, the forget
sets), the semantics recorded in its manifest and its one-line summary. The split itself is
`filters/forget_split.py`; the flow (`flows/unlearning_split.py`) publishes what this hands it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from corpora.atomic import atomic_write_text
from corpora.layout import Kind, Layout
from corpora.readers import FieldMap, InputError, expand_inputs
from corpora.records import QUARANTINE_SCHEMA
from corpora.sample import sample_corpus_path
from filters import forget_split as fs
from filters.forget_match import read_id_list, unmatched_summary

SAMPLE_SPEC = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "forget_sample.yaml"
LAYOUT_KINDS = ("tofu", "muse", "verbmem", "knowmem", "sets")
# what unlearning-split publishes: the splits and quarantine, and the packages, each a folder of named tables
# (tofu/forget01, muse/retain1, verbmem/forget, knowmem/<split>, sets/<set>/forget)
LAYOUT = Layout(tuple(Kind(s) for s in fs.SPLITS + ("quarantine",)) + tuple(Kind(k, tables=True) for k in LAYOUT_KINDS))
MUSE_DATA = "muse_data"  # MUSE's own file layout (JSON / TXT per split), beside the Parquet packages

SEMANTICS = {
    "unit": "connected component of 'same MinHash near-duplicate cluster' and 'same group_by value'; every "
            "decision is per unit, so forget/retain/holdout are disjoint by id, cluster and group",
    "forget": "units of rows the forget rules name (ids, url, domain, author, query, regex, qa_file) plus "
              "forget.fraction of the corpus's units (groups when group_by is set, else rows) taken in "
              "forget.order (last/first in corpus order, random by seeded hash)",
    "holdout": "holdout_fraction of the corpus (same counting) from the other units, by sha256(seed, 'holdout', "
               "unit id)",
    "retain": "everything else; retain_part 2 (MUSE retain2) = retain2_fraction of it by sha256(seed, 'retain2', "
              "unit id), retain_part 1 = retain1",
    "sets.nested": "set k = the first sizes[k] of the forget pool in its selection order (each inside the next); "
                   "its retain = corpus - set - holdout; named forgetNN by percent of the corpus when whole",
    "sets.sequential": "step k = the next sizes[k] share of the pool (disjoint); its retain = corpus - steps 1..k "
                       "- holdout",
    "verbmem": "forget text up to its prompt_words-th word (prompt) and the next gt_words words (gt); QA rows: "
               "question / answer",
    "knowmem": "QA rows of each split (a QA corpus), or knowmem.qa_file rows following their linked document",
}


def split_inputs(inputs: Sequence[str], forget: fs.ForgetSpec) -> tuple[list[Path], fs.ForgetSpec, bool]:
    """(input files, forget spec, whether this is the bundled demo). A folder with a manifest and a `data/`
    (one of our outputs) means its `data/`."""
    demo = not inputs
    spec = forget
    if spec.is_empty():
        if not demo:
            raise InputError("unlearning-split: give a forget spec (forget.ids / ids_file / url / domain / author / "
                             "query / regex / qa_file / fraction)")
        spec = fs.ForgetSpec.model_validate(yaml.safe_load(SAMPLE_SPEC.read_text()))
    raw = []
    for i in inputs or [str(sample_corpus_path())]:
        p = Path(i).expanduser()
        raw.append(str(p / "data") if p.is_dir() and (p / "manifest.json").is_file() and (p / "data").is_dir()
                   else i)
    return expand_inputs(raw), spec, demo


def corpus_kind(paths: list[Path], requested: str, text_field: str) -> str:
    return fs.detect_kind(paths, text_field) if requested == "auto" else requested


def read_corpus(paths: list[Path], kind: str, text_field: str, id_field: str, qa: fs.QAInput) -> fs.Corpus:
    if kind == "qa":
        return fs.read_qa(paths, qa)
    return fs.read_documents(paths, FieldMap(text_field=text_field, id_field=id_field))


def tofu_evals(cfg: fs.TofuEvalSets) -> dict[str, pa.Table]:
    """TOFU's evaluation sets that were given, read and checked (`fs.read_tofu_eval`)."""
    return {name: fs.read_tofu_eval(path, name) for name in fs.TOFU_EVAL_FIELDS
            if (path := getattr(cfg, name)) is not None}


def package_tables(corpus: fs.Corpus, res: fs.SplitResult, requested_layouts: Sequence[str] | None,
                   verbmem: fs.ProbeConfig, knowmem: fs.KnowledgeConfig, layout_stats: dict,
                   tofu: fs.TofuEvalSets = fs.TofuEvalSets(), muse_export: fs.MuseExport = fs.MuseExport(),
                   files: dict | None = None, seed: int = 0) -> Iterator[tuple[str, pa.Table, str | None]]:
    """(kind, table, table name inside a package kind or None) in publishing order (`LAYOUT`); `layout_stats` is filled on the way
    (written / skipped layouts, verbmem and knowmem counts), and `files` with the files that are not Parquet
    (path under the output -> a list written as JSON or a text): MUSE's own layout `muse_data/`, TOFU's
    `tofu/idontknow.jsonl`."""
    files = {} if files is None else files
    table = res.table
    evals = tofu_evals(tofu) if corpus.kind == "qa" else {}
    if "retain_perturbed" in evals:  # TOFU keeps these answers in retain_perturbed.json: join them into the rows
        table, filled = fs.join_perturbed(table, evals["retain_perturbed"])
        layout_stats["perturbed_joined"] = filled
    split_col = table.column("split")
    for s in fs.SPLITS:
        yield s, table.filter(pc.equal(split_col, s)), None
    yield "quarantine", pa.Table.from_pylist(corpus.quarantine, schema=QUARANTINE_SCHEMA), None
    probes = None
    if knowmem.qa_file and corpus.kind != "qa":
        probes = fs.read_qa([Path(knowmem.qa_file)], fs.QAInput(id_prefix="probe-")).table
    layouts, skipped = fs.applicable_layouts(corpus.kind, requested_layouts, probes is not None)
    layout_stats.update(written=layouts, skipped=skipped)
    if "tofu" in layouts:
        tabs, tstats = fs.tofu_tables(table, res.sets, res.stats["weight_by_split"], res.stats["total_weight"], evals)
        layout_stats["tofu"] = tstats
        for name, t in tabs.items():
            yield "tofu", t, name
        if tofu.idontknow:
            files["tofu/idontknow.jsonl"] = fs.read_idontknow(tofu.idontknow)
    verb = know = None
    if "muse" in layouts:
        for s, t in fs.muse_tables(table).items():
            yield "muse", t, s
    if "verbmem" in layouts:
        verb, short = fs.verbmem_table(table, verbmem, corpus.kind)
        layout_stats["verbmem"] = {"probes": verb.num_rows, "too_short": short}
        yield "verbmem", verb, "forget"
    if "knowmem" in layouts:
        know, kstats = fs.knowmem_tables(table, corpus.kind, probes, knowmem.link)
        layout_stats["knowmem"] = {**{s: t.num_rows for s, t in know.items()}, **kstats}
        for s, t in know.items():
            yield "knowmem", t, s
    if "muse" in layouts and muse_export.enabled:
        mfiles, mskipped = fs.muse_files(table, verb, know, muse_export, seed)
        files.update({f"{MUSE_DATA}/{k}": v for k, v in mfiles.items()})
        layout_stats["muse_data"] = {"files": {k: len(v) if isinstance(v, list) else None for k, v in mfiles.items()
                                               if k.endswith(".json")}, "skipped": mskipped}
    for name, masks in res.sets.items():
        for part in ("forget", "retain"):
            yield "sets", table.filter(pa.array(masks[part])), f"{name}/{part}"


def write_files(out_dir: Path, files: dict, work: Path) -> None:
    """The non-Parquet files of `package_tables`: `muse_data/` is built under `work` and swapped in whole (no file
    of an earlier run survives in it); any other file is written atomically in place."""
    muse = {k[len(MUSE_DATA) + 1:]: v for k, v in files.items() if k.startswith(MUSE_DATA + "/")}
    for rel, v in files.items():
        if not rel.startswith(MUSE_DATA + "/"):
            atomic_write_text(out_dir / rel, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    if muse:
        stage = work / MUSE_DATA
        shutil.rmtree(stage, ignore_errors=True)
        for rel, v in muse.items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_text(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False),
                                     encoding="utf-8")
        shutil.rmtree(out_dir / MUSE_DATA, ignore_errors=True)
        stage.rename(out_dir / MUSE_DATA)


def remove_stale_packages(out_dir: Path, outputs: dict, sets: dict, files: dict | None = None) -> None:
    """A layout (or forget set, TOFU config, MUSE export) this run did not write must not survive from an earlier
    run."""
    written = {k.split("/")[0] for k in outputs} | {f"sets/{k}" for k in sets}
    for k in LAYOUT_KINDS:
        if k not in written:
            shutil.rmtree(out_dir / k, ignore_errors=True)
    for old_set in (out_dir / "sets").glob("*") if (out_dir / "sets").is_dir() else []:
        if f"sets/{old_set.name}" not in written:
            shutil.rmtree(old_set, ignore_errors=True)
    leaves = {k for k in outputs if k.count("/") == 1} | set(files or {})
    for k in ("tofu", "muse", "verbmem", "knowmem"):
        for old in (out_dir / k).iterdir() if (out_dir / k).is_dir() else []:
            if f"{k}/{old.name}" not in leaves:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    if not any(k.startswith(MUSE_DATA + "/") for k in files or {}):
        shutil.rmtree(out_dir / MUSE_DATA, ignore_errors=True)


def summary_line(corpus: fs.Corpus, rows: dict[str, int], quarantined: int, res: fs.SplitResult,
                 layouts: list[str]) -> str:
    return (f"{corpus.kind}: read {corpus.records_read:,}: forget {rows['forget']:,}, retain {rows['retain']:,}, "
            f"holdout {rows['holdout']:,}, quarantine {quarantined:,} ({res.stats['units']:,} units); "
            f"layouts {', '.join(layouts) or '-'}"
            + ("; sets " + ", ".join(f"{k} {v['forget']}/{v['retain']}" for k, v in res.stats["sets"].items())
               if res.stats["sets"] else ""))


def empty_id_files(files: list[str | None]) -> list[str]:
    return [f for f in files if f and not read_id_list(f)]


def say_unmatched(pipeline: str, match_stats: dict, empty_files: list[str], strict: bool, say) -> None:
    """What the rules named nothing with: one line through `say`, or (strict) the run's one-line error."""
    line = unmatched_summary(match_stats, empty_files)
    if line is None:
        return
    if strict:
        raise InputError(f"{pipeline}: {line} (strict: every listed id and rule must name a row)")
    say(f"{pipeline}: note: {line} (strict=true makes this an error)")


def preflight(paths: list[Path], spec: fs.ForgetSpec, requested_kind: str, text_field: str,
              layouts: Sequence[str] | None, knowmem_qa_file: str | None, strict: bool,
              tofu: fs.TofuEvalSets = fs.TofuEvalSets()) -> None:
    if spec.ids_file and not read_id_list(spec.ids_file) and strict:
        raise InputError(f"unlearning-split: id file {spec.ids_file} holds no ids (strict)")
    if spec.qa_file:
        fs.read_qa_keys(spec.qa_file)
    if knowmem_qa_file and not Path(knowmem_qa_file).is_file():
        raise InputError(f"knowmem.qa_file: {knowmem_qa_file} does not exist")
    kind = corpus_kind(paths, requested_kind, text_field)
    fs.applicable_layouts(kind, layouts, bool(knowmem_qa_file))
    given = [n for n in (*fs.TOFU_EVAL_FIELDS, "idontknow") if getattr(tofu, n) is not None]
    if given and kind != "qa":
        raise InputError(f"tofu.{given[0]}: TOFU's evaluation sets go with a QA corpus (question, answer rows)")
    tofu_evals(tofu)
    if tofu.idontknow:
        fs.read_idontknow(tofu.idontknow)
