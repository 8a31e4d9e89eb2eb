"""`unlearning-split`'s `muse_data/`: MUSE's own file layout, opened the way MUSE's code opens it.

What MUSE reads (swj0419/muse_bench): constants.py DEFAULT_DATA (lines 7-16) names the files of a corpus folder
`data/<corpus>/`: verbmem/forget.json, privleak/{forget,retain,holdout}.json, knowmem/{forget,retain}_qa.json and
knowmem/{forget,retain}_qa_icl.json; eval.py reads them with `read_json` and takes `d['prompt']`, `d['gt']`
(verbmem, lines 55-58), the privleak lists as they are (lines 69-72), `d['question']`, `d['answer']` (knowmem, lines
82-88). The unlearning baselines (jaechan-repo/muse_bench baselines/baselines/dataset.py, DefaultDataset) train on
`raw/forget.txt` / `raw/retain1.txt` (scripts/unlearn_bbc.sh) or a `.json` list of strings.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters import forget_split as fs
from flows.config import load_config
from tests.conftest import shared_path

MUSE_DEFAULT_DATA = {  # constants.py DEFAULT_DATA['news'], relative to data/news/
    "verbmem_forget_file": "verbmem/forget.json",
    "privleak_forget_file": "privleak/forget.json",
    "privleak_retain_file": "privleak/retain.json",
    "privleak_holdout_file": "privleak/holdout.json",
    "knowmem_forget_qa_file": "knowmem/forget_qa.json",
    "knowmem_forget_qa_icl_file": "knowmem/forget_qa_icl.json",
    "knowmem_retain_qa_file": "knowmem/retain_qa.json",
    "knowmem_retain_qa_icl_file": "knowmem/retain_qa_icl.json",
}


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


def muse_reads(folder: Path) -> dict:
    """What eval.py's eval_model does with each file (minus the model)."""
    files = {k: folder / v for k, v in MUSE_DEFAULT_DATA.items()}
    data = read_json(files["verbmem_forget_file"])
    out = {"prompts": [d["prompt"] for d in data], "gts": [d["gt"] for d in data]}
    for k in ("privleak_forget_file", "privleak_retain_file", "privleak_holdout_file"):
        out[k] = read_json(files[k])
    for s in ("forget", "retain"):
        qa, icl = read_json(files[f"knowmem_{s}_qa_file"]), read_json(files[f"knowmem_{s}_qa_icl_file"])
        out[s] = ([d["question"] for d in qa], [d["answer"] for d in qa], [d["question"] for d in icl],
                  [d["answer"] for d in icl])
    return out


def dataset_strings(path: Path) -> list[str]:
    """DefaultDataset's reading of a data file, before tokenising: a .json list of strings (or of {text}), or .txt."""
    if path.suffix == ".json":
        data = read_json(path)
        if isinstance(data[0], str):
            return data
        assert isinstance(data[0], dict) and isinstance(data[0]["text"], str)
        return [d["text"] for d in data]
    assert path.suffix == ".txt"
    return [path.read_text()]


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory, prefect_harness):
    """TOFU as a QA corpus with the flow's defaults (holdout 10%, retain2 half the retain): every MUSE file."""
    from flows.unlearning_split import SplitConfig, split_flow

    d = shared_path("data", "unlearning")
    out = tmp_path_factory.mktemp("muse") / "out"
    cfg = load_config(SplitConfig, inputs=[str(d / "tofu_retain90.json"), str(d / "tofu_forget10.json")],
                      output=str(out), sets=["qa.rows_per_author=20", "group_by=author", "forget.fraction=0.1",
                                             "forget.order=last"])
    return out, split_flow(cfg)


def test_muse_opens_every_file_of_its_layout(qa_run):
    out, result = qa_run
    folder = out / "muse_data"
    got = muse_reads(folder)
    forget = set(pq.read_table(out / "muse" / "forget").column("text").to_pylist())  # our Parquet package
    assert len(got["prompts"]) == len(got["gts"]) == 400  # QA rows: question -> answer
    assert set(got["privleak_forget_file"]) == forget
    muse = {s: read_json(folder / "raw" / f"{s}.json") for s in ("forget", "retain1", "retain2", "holdout")}
    assert got["privleak_retain_file"] == muse["retain2"] and got["privleak_holdout_file"] == muse["holdout"]
    assert len(muse["forget"]) == 400 and len(muse["holdout"]) == 400 and sum(map(len, muse.values())) == 4000
    for s, n in (("forget", 400), ("retain", len(muse["retain2"]))):
        qs, ans, icl_q, icl_a = got[s]
        assert len(icl_q) == 10 and len(qs) == n - 10 and not set(qs) & set(icl_q)  # shots never scored
        assert all(isinstance(x, str) and x for x in qs + ans + icl_q + icl_a)
    retain2_text = set(muse["retain2"])
    assert all(f"{q}\n{a}" in retain2_text for q, a in zip(got["retain"][0], got["retain"][1]))  # MUSE's retain2_qa
    stats = result["stats"]["layouts"]["muse_data"]
    assert stats["skipped"] == {} and stats["files"]["knowmem/forget_qa.json"] == 390


def test_muse_baselines_read_the_raw_files(qa_run):
    out, _ = qa_run
    raw = out / "muse_data" / "raw"
    for s in ("forget", "retain1", "retain2", "holdout"):
        strings = dataset_strings(raw / f"{s}.json")
        (text,) = dataset_strings(raw / f"{s}.txt")
        assert text == "\n\n".join(strings) + "\n"


def test_the_demo_writes_muse_verbmem_prompts_of_hundreds_of_words(tmp_path, prefect_harness):
    from flows.unlearning_split import SplitConfig, split_flow

    out = tmp_path / "demo"
    result = split_flow(load_config(SplitConfig, output=str(out)))
    folder = out / "muse_data"
    data = read_json(folder / MUSE_DEFAULT_DATA["verbmem_forget_file"])
    assert data and all(set(d) == {"prompt", "gt"} for d in data)
    assert max(len(d["prompt"].split()) for d in data) > 100
    # a document corpus has no QA of its own: knowmem needs knowmem.qa_file; the stats say so
    assert not (folder / "knowmem").exists() and "knowmem/" in result["stats"]["layouts"]["muse_data"]["skipped"]
    for k in ("privleak_forget_file", "privleak_retain_file", "privleak_holdout_file"):
        texts = read_json(folder / MUSE_DEFAULT_DATA[k])
        assert texts and all(isinstance(t, str) for t in texts)


def test_verbatim_probe_of_a_book_has_muse_length():
    """A real long text (a Gutenberg book from ../shared): 768 words of prompt, the next 128 as gt, spacing kept."""
    book = sorted(shared_path("data", "gutenberg", "texts").glob("*.txt"))[0].read_text(errors="replace")
    prompt, gt = fs.verbatim_probe(book, fs.ProbeConfig())
    assert (len(prompt.split()), len(gt.split())) == (768, 128)
    start = book.index(prompt)
    assert book[start + len(prompt):].lstrip().startswith(gt)
    short = " ".join(f"w{i}" for i in range(100))
    p, g = fs.verbatim_probe(short, fs.ProbeConfig())
    assert (len(p.split()), len(g.split())) == (32, 68)  # a short text keeps min_prompt_words of prompt
    assert fs.verbatim_probe(" ".join(["w"] * 39), fs.ProbeConfig()) is None  # under 32 + 8 words
