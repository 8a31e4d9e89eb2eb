"""Style classifier: predicts a text's time slice from vocabulary and spelling, with calibrated probabilities.

Trained on time-labelled text (the diachronic paper's `slices/<start>_<end>/{train,dev,test}.txt`, one line of
paragraphs per split). scikit-learn rather than fastText: on these ~100k words per slice a TF-IDF (word 1-2 grams,
case and hyphenation kept, since "to-day", "shew", "connexion" are the signal) + logistic regression reaches
~49% / 68% accuracy on 200 / 1000-word test chunks (5 slices, chance 20%; ~86% / 96% within one slice) and trains
in seconds; fastText supervised stayed at chance with default settings on this little data.
Calibration: one temperature fitted on the dev split (minimum log loss). A book is scored chunk by chunk and the
chunk probabilities are averaged (robust to a few odd chunks, and not over-confident the way a product is).
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from filters.dating.evidence import Evidence
from filters.dating.periods import Slice, parse_slice_name

MODEL_FILE = "style_model.pkl"
META_FILE = "style_model.json"
DEFAULT_CHUNK_WORDS = 200


class StyleModelError(ValueError):
    """Missing/unreadable model or training data; names the path and the reason."""


def word_chunks(text: str, words: int) -> list[str]:
    """Consecutive chunks of `words` words (the tail is kept if at least half a chunk)."""
    toks = text.split()
    out = [" ".join(toks[i: i + words]) for i in range(0, len(toks), words)]
    if len(out) > 1 and len(out[-1].split()) < words / 2:
        out.pop()
    return [c for c in out if c]


def read_slice_split(slices_dir: str | Path, split: str) -> dict[Slice, str]:
    """{slice: text} for one split ("train", "dev", "test") of a `slices/<start>_<end>/<split>.txt` folder."""
    root = Path(slices_dir)
    if not root.is_dir():
        raise StyleModelError(f"{root}: slices folder does not exist")
    out: dict[Slice, str] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        sl = parse_slice_name(sub.name)
        if sl is None:
            continue
        f = sub / f"{split}.txt"
        if f.exists():
            out[sl] = f.read_text(encoding="utf-8", errors="replace")
    if len(out) < 2:
        raise StyleModelError(f"{root}: need at least two '<start>_<end>/{split}.txt' slice files, found {len(out)}")
    return out


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.2), np.log(5.0), 60)):
        p = _softmax(logits / t)
        nll = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def _logits(pipeline, texts: list[str]) -> np.ndarray:
    """(n, classes) scores; a two-class model's single margin d becomes (-d/2, d/2), whose softmax is sigmoid(d)."""
    d = np.asarray(pipeline.decision_function(texts), dtype=float)
    if d.ndim == 1:
        d = np.stack([-d / 2, d / 2], axis=1)
    return d


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class StyleModel:
    slices: list[Slice]
    pipeline: object  # sklearn Pipeline(TfidfVectorizer, LogisticRegression)
    temperature: float = 1.0
    chunk_words: int = DEFAULT_CHUNK_WORDS
    metrics: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ predict
    def chunk_proba(self, chunks: list[str]) -> np.ndarray:
        return _softmax(_logits(self.pipeline, chunks) / self.temperature)

    def predict_proba(self, text: str, max_chunks: int = 200) -> dict[str, float] | None:
        """Calibrated slice probabilities for a whole text (mean over evenly spaced chunks); None if too short."""
        chunks = word_chunks(text, self.chunk_words)
        if not chunks:
            return None
        if len(chunks) > max_chunks:  # evenly spaced sample: same answer, bounded cost for long books
            idx = np.linspace(0, len(chunks) - 1, max_chunks).round().astype(int)
            chunks = [chunks[i] for i in idx]
        p = self.chunk_proba(chunks).mean(axis=0)
        return {sl.name: float(v) for sl, v in zip(self.slices, p)}

    def evidence(self, text: str) -> Evidence | None:
        probs = self.predict_proba(text)
        if probs is None:
            return None
        best = max(probs, key=probs.get)
        expected = sum(p * parse_slice_name(k).midpoint for k, p in probs.items())
        return Evidence("style", "dist", confidence=round(probs[best], 4), source="style model",
                        snippet=f"{best} p={probs[best]:.2f}",
                        detail={"slice_probs": {k: round(v, 4) for k, v in probs.items()},
                                "expected_year": round(expected, 1),
                                "chunks": min(len(word_chunks(text, self.chunk_words)), 200)})

    # ------------------------------------------------------------------ persist
    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        import sklearn

        tmp = d / (MODEL_FILE + ".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(self.pipeline, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(d / MODEL_FILE)
        meta = {"slices": [s.name for s in self.slices], "temperature": self.temperature,
                "chunk_words": self.chunk_words, "metrics": self.metrics, "sklearn": sklearn.__version__}
        (d / META_FILE).write_text(json.dumps(meta, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "StyleModel":
        """Load from a local folder written by `save` (a trusted file: it is a pickle)."""
        d = Path(directory)
        if not (d / MODEL_FILE).exists() or not (d / META_FILE).exists():
            raise StyleModelError(f"{d}: no style model here (expected {MODEL_FILE} and {META_FILE}); "
                                  f"train one with `flows run diachronic-train`")
        meta = json.loads((d / META_FILE).read_text())
        with open(d / MODEL_FILE, "rb") as fh:
            pipeline = pickle.load(fh)
        slices = [parse_slice_name(s) for s in meta["slices"]]
        return cls(slices=slices, pipeline=pipeline, temperature=meta["temperature"],
                   chunk_words=meta["chunk_words"], metrics=meta.get("metrics", {}))


def train_style_model(slices_dir: str | Path, chunk_words: int = DEFAULT_CHUNK_WORDS, C: float = 10.0,
                      max_features: int = 100_000, max_train_words: int | None = None,
                      max_eval_words: int | None = None, seed: int = 0) -> StyleModel:
    """Fit on `train`, calibrate the temperature on `dev`, report accuracy on `test` (chunk level and 1000-word
    chunks) in `metrics`. `max_train_words` / `max_eval_words` cap words per slice (small models for tests)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = read_slice_split(slices_dir, "train")
    slices = sorted(train, key=lambda s: s.start)
    X, y = [], []
    for k, sl in enumerate(slices):
        text = train[sl]
        if max_train_words:
            text = " ".join(text.split()[:max_train_words])
        ch = word_chunks(text, chunk_words)
        X += ch
        y += [k] * len(ch)
    if len(set(y)) < 2:
        raise StyleModelError(f"{slices_dir}: training text covers fewer than two slices")
    pipeline = make_pipeline(
        # character 2-4 grams inside word boundaries, case kept: spelling ("shew", "connexion", "to-day"),
        # hyphenation and capitalisation habits carry the period better than topic words
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=max_features,
                        sublinear_tf=True, lowercase=False),
        LogisticRegression(C=C, max_iter=2000, random_state=seed),
    )
    pipeline.fit(X, np.array(y))
    model = StyleModel(slices=slices, pipeline=pipeline, chunk_words=chunk_words)
    metrics: dict = {"train_chunks": len(X)}
    for split in ("dev", "test"):
        try:
            texts = read_slice_split(slices_dir, split)
        except StyleModelError:
            continue
        if max_eval_words:
            texts = {sl: " ".join(t.split()[:max_eval_words]) for sl, t in texts.items()}
        Xs, ys = [], []
        for k, sl in enumerate(slices):
            ch = word_chunks(texts.get(sl, ""), chunk_words)
            Xs += ch
            ys += [k] * len(ch)
        if not Xs:
            continue
        ys_arr = np.array(ys)
        logits = _logits(pipeline, Xs)
        if split == "dev":
            model.temperature = _fit_temperature(logits, ys_arr)
        p = _softmax(logits / model.temperature)
        metrics[f"{split}_chunk_accuracy"] = round(float((p.argmax(1) == ys_arr).mean()), 4)
        metrics[f"{split}_chunk_within_one_slice"] = round(float((abs(p.argmax(1) - ys_arr) <= 1).mean()), 4)
        metrics[f"{split}_chunk_log_loss"] = round(float(-np.log(p[np.arange(len(ys)), ys_arr] + 1e-12).mean()), 4)
        if split == "test":
            # 1000-word pieces scored the way books are (mean of chunk probabilities)
            hits, n = 0, 0
            for k, sl in enumerate(slices):
                for piece in word_chunks(texts.get(sl, ""), 1000):
                    probs = model.predict_proba(piece)
                    hits += int(max(probs, key=probs.get) == sl.name)
                    n += 1
            if n:
                metrics["test_1000w_accuracy"] = round(hits / n, 4)
    model.metrics = metrics
    return model

