""""Who's Harry Potter" generic labels (Eldan & Russinovich 2023): anchored terms, block translation, alignment
across two tokenisations, generic logits, inconsistent-renaming masking, and the two-model scorer.

Per block of an unlearn target:
1. anchored terms (term -> generic translation) are found in the ORIGINAL block (longest term first, whole words)
   and replaced; a term with several translations gets one of them per block (the same one every time it occurs in
   that block: the renaming is consistent within a block);
2. the reinforced model reads the original block, the baseline the translated block;
3. alignment (`align_positions`): the label of original position j (HF convention: `label_ids[j]` is what the
   logits at j-1 should predict) is taken where the two prefixes correspond. Original token j starts at character
   c_j (the tokenizer's offset mapping, relative to the block); c_j maps to the translated text by the anchor spans
   (before/after a span: shifted by the length differences of the spans before it; the span start maps to the
   translated span start, the span end to the translated span end); a character strictly inside an anchor span has
   no image. If a translated token k starts exactly at the image (and is a clean start: the previous token ends at or
   before it), the pair (j, k) is aligned: reinforced logits at j-1, baseline logits at k-1. Otherwise j is masked:
   `first_token` (j = 0 or k = 0: nothing predicts it), `inside_anchor` (the 2nd.. tokens of an original anchor: the
   translation has its own token count, so these positions have no counterpart; masked, never mapped), `no_boundary`
   (the translated tokenisation has no token starting there, e.g. a merge across the anchor's end),
   `split_character` (a token starting inside a character that the previous token already covers, byte fallback);
4. generic logits on raw logits: v_g = v_b - alpha * ReLU(v_r - v_b), for every alpha of the run; the label is
   argmax v_g (optionally the top-k of softmax(v_g) as soft labels);
5. `renaming` mask: once an anchored term has occurred in the original block before position j, a label that is the
   first token of that term's translation (and not the original token itself) would teach the model to rename, in
   mid-text, something its input already called by its own name; such positions are masked.

Everything above step 5 is pure (no model): `translate_block`, `align_positions`, `generic_labels`,
`renaming_mask`. `PairScorer` holds the two models (each its own forward; no cache is shared or needed: a block
is one teacher-forced forward per model) and labels batches of blocks.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from corpora.hashing import content_id, short_hash
from corpora.jsonl import JsonlError, read_jsonl
from corpora.records import BadRecord

ANCHOR_TEMPLATE_ID = "whp_anchors@v1"
IGNORE_INDEX = -100  # label_ids at masked positions: HF losses ignore it, so label_ids can be `labels` as is
MASK_REASONS = ("first_token", "inside_anchor", "no_boundary", "split_character", "renaming")


# ------------------------------------------------------------------------------------------------ targets
@dataclass
class TargetDoc:
    id: str
    text: str
    source: str


def qa_text(question: str, answer: str) -> str:
    """A TOFU-style QA pair as one target text (the layout TOFU fine-tunes on)."""
    return f"Question: {question.strip()}\nAnswer: {answer.strip()}"


def read_target_texts(paths: Sequence[str | Path], text_field: str = "text", id_field: str = "id"
                      ) -> tuple[list[TargetDoc], list[BadRecord]]:
    """Unlearn targets from JSONL / Parquet / text files (the project readers) or a JSON array file (TOFU's
    `[{question, answer, ...}]`, or objects with `text_field`). Bad items come back as BadRecords (file, item,
    reason), never dropped silently."""
    from corpora.readers import FieldMap, expand_inputs, read_records

    docs: list[TargetDoc] = []
    bad: list[BadRecord] = []
    for path in expand_inputs(paths):
        if path.suffix.lower() == ".json" and path.read_bytes()[:1024].lstrip()[:1] == b"[":
            try:
                items = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.append(BadRecord(str(path), "file", f"not valid JSON: {e}"))
                continue
            source = path.stem
            for n, item in enumerate(items):
                where = f"item {n}"
                if not isinstance(item, dict):
                    bad.append(BadRecord(str(path), where, "expected an object", str(item)[:200]))
                    continue
                if isinstance(item.get(text_field), str):
                    text = item[text_field]
                elif isinstance(item.get("question"), str) and isinstance(item.get("answer"), str):
                    text = qa_text(item["question"], item["answer"])
                else:
                    bad.append(BadRecord(str(path), where, f"no string '{text_field}' and no question/answer pair",
                                         json.dumps(item)[:200]))
                    continue
                if not text.strip():
                    bad.append(BadRecord(str(path), where, "empty text"))
                    continue
                rid = item.get(id_field)
                docs.append(TargetDoc(str(rid) if rid is not None else f"{source}:{n}", text, source))
            continue
        for rec in read_records(path, FieldMap(text_field=text_field, id_field=id_field)):
            if isinstance(rec, BadRecord):
                bad.append(rec)
            elif not rec.text.strip():
                bad.append(BadRecord(str(path), f"id {rec.id}", "empty text"))
            else:
                docs.append(TargetDoc(rec.id or content_id(rec.text, rec.source), rec.text, rec.source))
    return docs, bad


# ------------------------------------------------------------------------------------------------ anchors
class AnchorError(ValueError):
    """A bad anchors file: the message names the file, the entry and the reason."""


def _check_entry(term: Any, tr: Any, where: str) -> tuple[str, list[str]]:
    if not isinstance(term, str) or not term.strip():
        raise AnchorError(f"{where}: the term must be a non-empty string, got {term!r}")
    trs = [tr] if isinstance(tr, str) else tr
    if not isinstance(trs, list) or not trs or not all(isinstance(t, str) and t.strip() for t in trs):
        raise AnchorError(f"{where}: term {term!r}: the translation must be a non-empty string or a list of them, "
                          f"got {tr!r}")
    if any("\n" in t for t in [term, *trs]):
        raise AnchorError(f"{where}: term {term!r}: no newlines in anchors")
    if term.strip() in [t.strip() for t in trs]:
        raise AnchorError(f"{where}: term {term!r} translates to itself")
    return term.strip(), [t.strip() for t in trs]


def load_anchors(path: str | Path) -> dict[str, list[str]]:
    """An anchors dictionary: a JSON object `{term: translation | [translations]}` (the format this pipeline
    writes for review), or JSONL rows `{"term": ..., "translation": ...}` (also our `anchors/` Parquet)."""
    path = Path(path)
    if not path.is_file():
        raise AnchorError(f"{path}: anchors file does not exist")
    out: dict[str, list[str]] = {}

    def add(term, tr, where):
        t, trs = _check_entry(term, tr, where)
        if t in out:
            raise AnchorError(f"{where}: term {t!r} is listed twice")
        out[t] = trs

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for n, row in enumerate(pq.read_table(path).to_pylist()):
            add(row.get("term"), row.get("translation"), f"{path}: row {n}")
    elif path.suffix == ".jsonl":
        try:
            for n, row in read_jsonl(path, objects=False):
                if not isinstance(row, dict):
                    raise AnchorError(f"{path}: line {n}: expected an object with term and translation")
                add(row.get("term"), row.get("translation"), f"{path}: line {n}")
        except JsonlError as e:
            raise AnchorError(str(e)) from None
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise AnchorError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if not isinstance(data, dict):
            raise AnchorError(f"{path}: expected a JSON object {{term: translation}}")
        for term, tr in data.items():
            add(term, tr, f"{path}: entry {term!r}")
    if not out:
        raise AnchorError(f"{path}: no anchors in the file")
    return out


def anchors_hash(anchors: dict[str, list[str]]) -> str:
    return short_hash(json.dumps(anchors, sort_keys=True, ensure_ascii=False))


def anchor_pattern(terms: Iterable[str], case_sensitive: bool = True) -> re.Pattern:
    """One regex for all terms, longest first (so "Harry Potter" wins over "Harry"), whole words only."""
    alts = sorted(set(terms), key=lambda t: (-len(t), t))
    body = "|".join(re.escape(t) for t in alts)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", 0 if case_sensitive else re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    """An anchor occurrence: [orig_start, orig_end) in the original block, [trans_start, trans_end) in the
    translation."""

    orig_start: int
    orig_end: int
    trans_start: int
    trans_end: int
    term: str
    translation: str


@dataclass
class Translation:
    text: str
    spans: list[Span]
    used: dict[str, str]  # term -> the translation chosen for this block


def _canonical(term_found: str, anchors: dict[str, list[str]], lower: dict[str, str]) -> str:
    return term_found if term_found in anchors else lower[term_found.lower()]


def translate_block(text: str, anchors: dict[str, list[str]], pattern: re.Pattern, key: str = "") -> Translation:
    """Replace every anchored term in `text`. A term with several translations takes one per block, chosen by a
    hash of (`key`, term): stable across runs, the same at every occurrence in the block."""
    lower = {t.lower(): t for t in anchors}
    chosen: dict[str, str] = {}
    pieces: list[str] = []
    spans: list[Span] = []
    pos = out_len = 0
    for m in pattern.finditer(text):
        term = _canonical(m.group(0), anchors, lower)
        if term not in chosen:
            options = anchors[term]
            chosen[term] = options[int(short_hash(key, term, length=8), 16) % len(options)]
        tr = chosen[term]
        pieces.append(text[pos:m.start()])
        out_len += m.start() - pos
        spans.append(Span(m.start(), m.end(), out_len, out_len + len(tr), term, tr))
        pieces.append(tr)
        out_len += len(tr)
        pos = m.end()
    pieces.append(text[pos:])
    return Translation("".join(pieces), spans, chosen)


def map_char(pos: int, spans: Sequence[Span]) -> int | None:
    """The translated character offset of original offset `pos`; None strictly inside an anchor span."""
    shift = 0
    for s in spans:
        if pos < s.orig_start:
            break
        if pos == s.orig_start:
            return s.trans_start
        if pos < s.orig_end:
            return None
        shift = s.trans_end - s.orig_end
    return pos + shift


def clean_starts(offsets: Sequence[tuple[int, int]]) -> dict[int, int]:
    """{character offset: token index} for tokens that start a character cleanly (the previous token ends at or
    before it); the first such token per offset."""
    out: dict[int, int] = {}
    prev_end = 0
    for k, (s, e) in enumerate(offsets):
        if (k == 0 or prev_end <= s) and s not in out:
            out[s] = k
        prev_end = max(prev_end, e)
    return out


def align_positions(orig_offsets: Sequence[tuple[int, int]], trans_offsets: Sequence[tuple[int, int]],
                    spans: Sequence[Span]) -> tuple[list[int], list[str | None]]:
    """For each original position j: the translated position k whose baseline logits at k-1 predict the token that
    corresponds to original token j (-1 when none), and the reason when there is none (see the module docstring)."""
    trans_at = clean_starts(trans_offsets)
    aligned, reasons = [], []
    prev_end = 0
    for j, (s, e) in enumerate(orig_offsets):
        reason = None
        k = -1
        if j == 0:
            reason = "first_token"
        elif s < prev_end:
            reason = "split_character"
        else:
            t = map_char(s, spans)
            if t is None:
                reason = "inside_anchor"
            else:
                k = trans_at.get(t, -1)
                if k == -1:
                    reason = "no_boundary"
                elif k == 0:
                    k, reason = -1, "first_token"
        aligned.append(k)
        reasons.append(reason)
        prev_end = max(prev_end, e)
    return aligned, reasons


def entity_groups(terms: Iterable[str]) -> dict[str, frozenset[str]]:
    """term -> the terms naming the same entity: a term whose words are all words of a longer term ("Harry" in
    "Harry Potter") joins it (transitively; case-insensitive). Renaming consistency is judged per entity."""
    terms = sorted(set(terms))
    words = {t: set(re.findall(r"\w+", t.lower())) for t in terms}
    parent = {t: t for t in terms}

    def root(t):
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for a in terms:
        for b in terms:
            if a != b and words[a] and words[a] <= words[b]:
                parent[root(a)] = root(b)
    members: dict[str, set[str]] = {}
    for t in terms:
        members.setdefault(root(t), set()).add(t)
    return {t: frozenset(members[root(t)]) for t in terms}


def renaming_mask(labels: Sequence[int], input_ids: Sequence[int], orig_offsets: Sequence[tuple[int, int]],
                  spans: Sequence[Span], first_tokens: dict[str, set[int]],
                  groups: dict[str, frozenset[str]] | None = None) -> list[bool]:
    """True where the label would teach an inconsistent renaming: an anchored term already occurred (ended) in the
    original block before position j, and the label is a first token of the translation of that term or of any
    term of its entity (`groups`, from `entity_groups`: after "Harry Potter" -> "Jon Smith", a "Harry" -> "Tom"
    label is masked too) in this block (`first_tokens`: term -> the ids a translation can start with) while the
    original token is not."""
    groups = groups or {}
    out = []
    for j, (lab, tok) in enumerate(zip(labels, input_ids)):
        start = orig_offsets[j][0]
        seen = {s.term for s in spans if s.orig_end <= start}
        seen |= {m for t in seen for m in groups.get(t, ())}
        out.append(any(lab in first_tokens.get(t, ()) for t in seen) and lab != tok)
    return out


def translation_first_tokens(tokenizer, used: dict[str, str]) -> dict[str, set[int]]:
    """term -> ids the translation may start with (after a space, and at a line start)."""
    out = {}
    for term, tr in used.items():
        ids = set()
        for variant in (" " + tr, tr):
            enc = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if enc:
                ids.add(enc[0])
        out[term] = ids
    return out


# ------------------------------------------------------------------------------------------ generic logits
def generic_logits(v_b, v_r, alpha: float):
    """v_b - alpha * ReLU(v_r - v_b) on raw logits (torch tensors or numpy arrays)."""
    diff = v_r - v_b
    return v_b - alpha * (diff * (diff > 0))


def generic_labels(v_b, v_r, alphas: Sequence[float], top_k: int = 0) -> dict[float, dict[str, Any]]:
    """Per alpha: `labels` (argmax of the generic logits) and, with top_k, `topk_ids` / `topk_probs` (softmax of
    the generic logits). v_b, v_r: [positions, vocab] torch float tensors."""
    import torch

    out = {}
    for a in alphas:
        g = generic_logits(v_b, v_r, float(a))
        res = {"labels": g.argmax(-1)}
        if top_k:
            p, i = torch.softmax(g, -1).topk(top_k, -1)
            res.update(topk_ids=i, topk_probs=p)
        out[float(a)] = res
    return out


# ---------------------------------------------------------------------------------------------- blocks
@dataclass
class Block:
    doc_id: str
    source: str
    block_idx: int
    char_start: int  # in the document
    char_end: int
    text: str
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # relative to the block
    translation: Translation | None = None
    translated_ids: list[int] = field(default_factory=list)
    translated_offsets: list[tuple[int, int]] = field(default_factory=list)
    aligned: list[int] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)


def split_blocks(doc: TargetDoc, tokenizer, block_tokens: int, min_tokens: int = 2) -> list[Block]:
    """The document tokenised once (no special tokens), cut into blocks of `block_tokens` tokens; a cut never falls
    inside a character (it moves back to a clean token start); a last block under `min_tokens` is dropped."""
    enc = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
    blocks, start = [], 0
    while start < len(ids):
        end = min(start + block_tokens, len(ids))
        while end < len(ids) and end > start + 1 and offs[end][0] < offs[end - 1][1]:
            end -= 1
        if end - start >= min_tokens:
            c0, c1 = offs[start][0], offs[end - 1][1]
            blocks.append(Block(doc.id, doc.source, len(blocks), c0, c1, doc.text[c0:c1], ids[start:end],
                                [(s - c0, e - c0) for s, e in offs[start:end]]))
        start = end
    return blocks


def prepare_block(block: Block, tokenizer, anchors: dict[str, list[str]], pattern: re.Pattern) -> Block:
    block.translation = translate_block(block.text, anchors, pattern, key=f"{block.doc_id}#{block.block_idx}")
    enc = tokenizer(block.translation.text, add_special_tokens=False, return_offsets_mapping=True)
    block.translated_ids = list(enc["input_ids"])
    block.translated_offsets = [tuple(o) for o in enc["offset_mapping"]]
    block.aligned, block.reasons = align_positions(block.offsets, block.translated_offsets, block.translation.spans)
    return block


# ---------------------------------------------------------------------------------------------- scorer
def load_causal_lm(path: str, device: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM

    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model.to(device).eval()


class PairScorer:
    """The baseline and the reinforced model in memory at once; `label(blocks)` runs one batched teacher-forced
    forward per model (right padding, use_cache=False: nothing to share between the two models, whose inputs
    differ), takes the final hidden states only at the aligned positions and applies each model's own output head
    there (in chunks of `head_chunk` positions, so [positions x vocab] logits stay small), in float32."""

    def __init__(self, baseline: str, reinforced: str, device: str = "cpu", dtype: str = "float32",
                 head_chunk: int = 512):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(baseline)
        rtok = AutoTokenizer.from_pretrained(reinforced)
        if rtok.get_vocab() != self.tokenizer.get_vocab():
            raise ValueError(f"{reinforced}: its tokenizer differs from the baseline's ({baseline}); the reinforced "
                             "model must be the baseline fine-tuned (same vocabulary)")
        self.device, self.head_chunk = device, head_chunk
        self.baseline = load_causal_lm(baseline, device, dtype)
        self.reinforced = load_causal_lm(reinforced, device, dtype)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def _hidden(self, model, seqs: list[list[int]]):
        import torch

        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        att = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            att[i, :len(s)] = 1
        base = getattr(model, model.base_model_prefix)
        out = base(input_ids=ids.to(self.device), attention_mask=att.to(self.device), use_cache=False)
        return out.last_hidden_state

    def logits_at(self, blocks: Sequence[Block]):
        """(v_b, v_r, index): float32 [P, vocab] baseline logits at k-1 and reinforced logits at j-1 for every
        aligned pair (block b, j, k) listed in index, in block and position order."""
        import torch

        index = [(b, j, k) for b, blk in enumerate(blocks) for j, k in enumerate(blk.aligned) if k > 0]
        with torch.inference_mode():
            hb = self._hidden(self.baseline, [blk.translated_ids for blk in blocks])
            hr = self._hidden(self.reinforced, [blk.input_ids for blk in blocks])
            if not index:
                v = hb.new_zeros((0, self.baseline.config.vocab_size), dtype=torch.float32)
                return v, v, index
            bi = torch.tensor([b for b, _, _ in index], device=hb.device)
            kb = torch.tensor([k - 1 for _, _, k in index], device=hb.device)
            jr = torch.tensor([j - 1 for _, j, _ in index], device=hb.device)
            xb, xr = hb[bi, kb], hr[bi, jr]
            head_b, head_r = self.baseline.get_output_embeddings(), self.reinforced.get_output_embeddings()
            vb = torch.cat([head_b(xb[i:i + self.head_chunk]).float() for i in range(0, len(index), self.head_chunk)])
            vr = torch.cat([head_r(xr[i:i + self.head_chunk]).float() for i in range(0, len(index), self.head_chunk)])
        return vb, vr, index

    def label(self, blocks: Sequence[Block], alphas: Sequence[float], top_k: int = 0, mask_renaming: bool = True
              ) -> list[list[dict[str, Any]]]:
        """For each block, one result per alpha: label_ids (IGNORE_INDEX where masked), label_mask, mask reasons,
        top-k soft labels, and counts (labels != original token, != baseline argmax)."""
        import torch

        vb, vr, index = self.logits_at(blocks)
        chunked: dict[float, dict[str, list]] = {float(a): {} for a in alphas}
        base_arg = []
        for i in range(0, len(index), self.head_chunk):
            part = generic_labels(vb[i:i + self.head_chunk], vr[i:i + self.head_chunk], alphas, top_k)
            base_arg.append(vb[i:i + self.head_chunk].argmax(-1))
            for a, res in part.items():
                for key, val in res.items():
                    chunked[a].setdefault(key, []).append(val)
        merged = {a: {k: torch.cat(v).tolist() for k, v in d.items()} for a, d in chunked.items()}
        base_arg = torch.cat(base_arg).tolist() if base_arg else []
        where = {(b, j): p for p, (b, j, _) in enumerate(index)}
        results = []
        for b, blk in enumerate(blocks):
            first = translation_first_tokens(self.tokenizer, blk.translation.used) if mask_renaming else {}
            per_alpha = []
            for a in (float(x) for x in alphas):
                m = merged.get(a, {})
                n = len(blk.input_ids)
                labels = [IGNORE_INDEX] * n
                reasons = list(blk.reasons)
                topk_ids = [[] for _ in range(n)] if top_k else None
                topk_probs = [[] for _ in range(n)] if top_k else None
                changed_vs_base = 0
                for j in range(n):
                    p = where.get((b, j))
                    if p is None:
                        continue
                    labels[j] = m["labels"][p]
                    changed_vs_base += labels[j] != base_arg[p]
                    if top_k:
                        topk_ids[j], topk_probs[j] = m["topk_ids"][p], m["topk_probs"][p]
                if mask_renaming:
                    ren = renaming_mask(labels, blk.input_ids, blk.offsets, blk.translation.spans, first,
                                        entity_groups(blk.translation.used))
                    for j, r in enumerate(ren):
                        if r and reasons[j] is None:
                            reasons[j] = "renaming"
                mask = [r is None for r in reasons]
                labels = [lab if ok else IGNORE_INDEX for lab, ok in zip(labels, mask)]
                counts = {r: reasons.count(r) for r in MASK_REASONS if reasons.count(r)}
                per_alpha.append({"alpha": a, "label_ids": labels, "label_mask": mask, "mask_counts": counts,
                                  "topk_ids": topk_ids, "topk_probs": topk_probs,
                                  "labels_changed": sum(1 for lab, tok, ok in zip(labels, blk.input_ids, mask)
                                                        if ok and lab != tok),
                                  "labels_changed_vs_baseline": int(changed_vs_base)})
            results.append(per_alpha)
        return results


# --------------------------------------------------------------------------------------- LLM anchors
ANCHOR_PROMPT = (
    "Below is a passage. List the names, places, objects and other terms that are specific to it (people, places, "
    "organisations, invented things), and for each a generic replacement that would fit the same sentence but "
    "belongs to no particular story or person. One per line, in the form: term -> replacement. Nothing else.\n\n"
    "Passage:\n{text}"
)
_ANCHOR_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])?\s*\"?(?P<term>[^\n\"]+?)\"?\s*(?:->|\u2192|=>)\s*"
                          r"\"?(?P<tr>[^\n\"]+?)\"?\s*\.?\s*$")


def text_chunks(text: str, max_chars: int) -> list[str]:
    """`text` cut into consecutive pieces of at most `max_chars` characters that concatenate back to it exactly;
    each cut falls after the last paragraph break, else the last whitespace, in the second half of the window
    (a window with neither is cut at `max_chars`), so no word is split where a boundary exists."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    out, start = [], 0
    while len(text) - start > max_chars:
        window = text[start:start + max_chars]
        cut = window.rfind("\n\n") + 2
        if cut < max_chars // 2 + 2:
            cut = max((window.rfind(c) for c in (" ", "\n", "\t")), default=-1) + 1
        if cut < max_chars // 2 + 1:
            cut = max_chars
        out.append(window[:cut])
        start += cut
    out.append(text[start:])
    return [c for c in out if c]


def anchor_requests(docs: Sequence[TargetDoc], max_chars: int = 2000, sampling=None) -> list:
    """One request per `max_chars`-character chunk of each document (`text_chunks`: the whole document is shown,
    piece by piece; `merge_proposed_anchors` merges the chunks' proposals), greedy by default. A document that fits
    in one chunk keeps its single-request id."""
    from generators.backends.base import GenerationRequest, SamplingParams

    sampling = sampling or SamplingParams(temperature=0.0, max_tokens=256)
    reqs = []
    for d in docs:
        chunks = text_chunks(d.text, max_chars) or [""]
        for i, chunk in enumerate(chunks):
            key = (d.id, chunk) if i == 0 else (d.id, str(i), chunk)
            reqs.append(GenerationRequest(id="anchors-" + short_hash(*key, length=20),
                                          messages=[{"role": "user", "content": ANCHOR_PROMPT.format(text=chunk)}],
                                          sampling=sampling, template_id=ANCHOR_TEMPLATE_ID, parent_ids=[d.id],
                                          meta={"doc_id": d.id, "chunk": i, "chunks": len(chunks)}))
    return reqs


def parse_anchor_answer(text: str | None) -> list[tuple[str, str]]:
    """`term -> replacement` lines; anything else is ignored."""
    out = []
    for line in (text or "").splitlines():
        m = _ANCHOR_LINE.match(line)
        if m:
            term, tr = m.group("term").strip(), m.group("tr").strip()
            if term and tr and term != tr:
                out.append((term, tr))
    return out


def merge_proposed_anchors(answers: Sequence[dict], texts: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """From generated records (`text`, `request_id`, `model`, `doc_id`): (anchor rows, dropped rows). A term must
    occur in the targets as a whole word (else dropped: `not_in_targets`); a term proposed with several replacements
    takes the most frequent (ties: the first proposed); each row counts its proposals and names its requests."""
    props: dict[str, dict] = {}
    dropped = []
    for rec in answers:
        for term, tr in parse_anchor_answer(rec.get("text")):
            if not re.search(rf"(?<!\w){re.escape(term)}(?!\w)", "\n".join(texts)):
                dropped.append({"term": term, "translation": tr, "reason": "not_in_targets",
                                "request_id": rec.get("request_id")})
                continue
            p = props.setdefault(term, {"votes": {}, "requests": [], "doc_ids": [], "model": rec.get("model")})
            p["votes"][tr] = p["votes"].get(tr, 0) + 1
            p["requests"].append(rec.get("request_id"))
            p["doc_ids"].append(rec.get("doc_id"))
    rows = []
    for term, p in props.items():
        tr = max(p["votes"].items(), key=lambda kv: kv[1])[0]  # max keeps the first of equal counts
        rows.append({"term": term, "translation": tr, "source": "llm", "model": p["model"],
                     "proposals": sum(p["votes"].values()), "alternatives": json.dumps(p["votes"]),
                     "request_ids": sorted(set(filter(None, p["requests"]))),
                     "doc_ids": sorted(set(filter(None, p["doc_ids"])))})
    return rows, dropped
