"""The columns of Impossible Distillation's outputs and the rows that fill them: `data/` and `rejected/` (`FIELDS`:
one pair each), `contexts/`, `candidates/`, `distilled/` (self-distill's samples); a candidate's row
(`candidate_row`) and a pair's row (`pair_row`) from the filters' scores."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpora.generated import PROVENANCE_NAMES, generated_schema
from corpora.hashing import short_hash
from filters.sentences import is_full_sentence


def string_fields(*names: str) -> list[pa.Field]:
    return [pa.field(n, pa.string()) for n in names]


CONTEXT_FIELDS = string_fields("prefix", "prefix_id", "x_l", "y_orig") + [
    pa.field("sentence_index", pa.int32()), pa.field("selected", pa.bool_())]
CANDIDATE_FIELDS = string_fields("context_id", "x_l", "completion") + [pa.field("candidate_ok", pa.bool_())]
FIELDS = string_fields("context_id", "x_l", "y_orig", "y_new", "mode") + [pa.field(n, pa.float64()) for n in (
    "len_ratio", "nli_fwd", "nli_rev")] + [pa.field("numbers_ok", pa.bool_()), pa.field("rougeL", pa.float64()),
    *string_fields("component"), pa.field("passed", pa.bool_()),
    *string_fields("generator_model", "critic_model", "nli_rev_note"),
    pa.field("stage", pa.int32())]
DISTILLED_FIELDS = FIELDS + string_fields("completion", "reason", "student_model", "student_base") + [
    pa.field("candidate_ok", pa.bool_()), pa.field("selected", pa.bool_())]

CONTEXT_NAMES = generated_schema(CONTEXT_FIELDS).names
ROW_NAMES = set(generated_schema(FIELDS).names)
REJECT_NAMES = set(generated_schema(FIELDS, rejected=True).names)
CANDIDATE_NAMES = generated_schema(CANDIDATE_FIELDS).names


def candidate_row(rec: dict, sentence: str) -> tuple[dict, None]:
    """A candidate: its first sentence (a full one or not, `candidate_ok`), the whole completion beside it."""
    return {**rec, "text": sentence, "completion": rec["text"], "candidate_ok": is_full_sentence(sentence)}, None


def pair_row(ci: dict, cj: dict, k: int, s, mode: str, critic_model: str) -> dict:
    """Pair k of `filter_pairs`' scores `s` (candidate ci -> candidate cj: y_orig -> y_new), stage 0."""
    val = lambda a: None if np.isnan(a[k]) else float(a[k])  # noqa: E731
    return {**{n: cj.get(n) for n in PROVENANCE_NAMES}, "source": cj["source"],
            "id": "pair-" + short_hash(ci["id"], cj["id"], mode, length=20), "text": cj["text"],
            "parent_ids": [ci["id"], cj["id"]], "context_id": cj["context_id"], "x_l": cj["x_l"],
            "y_orig": ci["text"], "y_new": cj["text"], "mode": mode, "len_ratio": float(s.len_ratio[k]),
            "nli_fwd": val(s.nli_fwd), "nli_rev": val(s.nli_rev), "numbers_ok": bool(s.numbers_ok[k]),
            "rougeL": float(s.rougeL[k]), "component": s.component[k], "passed": s.reason[k] is None,
            "generator_model": cj["model"], "critic_model": critic_model, "nli_rev_note": s.rev_note, "stage": 0}
