"""Critics of sentence pairs: does the premise entail the hypothesis?

A critic has a `model` name and two vectorised calls over (premises, hypotheses):
- `entailment(...)`: a score in [0, 1] per pair (the thresholded score);
- `entails(...)`: a bool per pair (an edge of the dedup graph).

`NLICritic`: a Hugging Face sequence-classification model from a local path (the Impossible Distillation
reference: roberta-large-wanli). The entailment label's index comes from the model's `id2label` (MNLI models put
it at 2, WANLI at 1), never from a constant. Batched, truncated to 512 tokens, on the GPU when there is one;
`entailment` = softmax probability of the label, `entails` = the label is the argmax (the reference's graph edge).
Results are memoised per (premise, hypothesis), so the dedup graph re-uses the pair scores.

`EmbeddingCritic`: cosine similarity of MiniLM sentence embeddings (`filters.embeddings`), the same in both
directions (`symmetric = True`: the pair filters skip its reverse call and reuse the forward score); `entails` =
cosine >= `edge_threshold`.

`symmetric` is False for the NLI critic (entailment is directional) and the LLM judge.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np


def entailment_index(id2label: dict[Any, str]) -> int:
    """The index of the entailment label in a model's `id2label` (case-insensitive, 'entail...')."""
    hits = [int(i) for i, name in id2label.items() if str(name).lower().startswith("entail")]
    if len(hits) != 1:
        raise ValueError(f"id2label {dict(id2label)} has {len(hits)} entailment labels (need exactly one); "
                         "set the model's id2label")
    return hits[0]


class NLICritic:
    symmetric = False

    def __init__(self, path: str | Path, batch_size: int = 64, max_length: int = 512, device: str = "auto"):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path}: NLI model path does not exist (local paths only)")
        self.torch = torch
        self.model = str(path)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.net = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True)
        self.net.to(self.device).eval()
        self.label = entailment_index(self.net.config.id2label)
        self.batch_size, self.max_length = batch_size, max_length
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self.calls = 0  # model forward passes over pairs (not memo hits)

    def probs(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        """(N, labels) softmax probabilities."""
        keys = list(zip(premises, hypotheses))
        todo = list(dict.fromkeys(k for k in keys if k not in self._memo))
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s:s + self.batch_size]
            enc = self.tokenizer([p for p, _ in chunk], [h for _, h in chunk], truncation=True, padding=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            with self.torch.inference_mode():
                out = self.torch.softmax(self.net(**enc).logits.float(), dim=-1).cpu().numpy()
            self._memo.update(zip(chunk, out))
            self.calls += len(chunk)
        n_labels = self.net.config.num_labels
        return np.stack([self._memo[k] for k in keys]) if keys else np.zeros((0, n_labels))

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        return self.probs(premises, hypotheses)[:, self.label]

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        p = self.probs(premises, hypotheses)
        return p.argmax(axis=1) == self.label if len(p) else np.zeros(0, dtype=bool)


class EmbeddingCritic:
    symmetric = True  # cos(a, b) == cos(b, a)

    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None = None, name: str = "all-MiniLM-L6-v2",
                 edge_threshold: float = 0.75):
        if embed is None:
            from filters.embeddings import load_minilm

            embed = load_minilm()
        self.embed, self.model, self.edge_threshold = embed, name, edge_threshold
        self.calls = 0

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        if not len(premises):
            return np.zeros(0)
        self.calls += len(premises)
        uniq = list(dict.fromkeys([*premises, *hypotheses]))  # each sentence embedded once per call
        at = {t: k for k, t in enumerate(uniq)}
        vec = self.embed(uniq)
        a, b = vec[[at[t] for t in premises]], vec[[at[t] for t in hypotheses]]
        return np.clip((a * b).sum(axis=1), 0.0, 1.0)

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        return self.entailment(premises, hypotheses) >= self.edge_threshold
