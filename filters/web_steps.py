"""The URL blocklist and Dolma/Gopher/C4/FineWeb/PII/toxicity/quality filters as datatrove steps, and the filter stack in
the fixed order the dolma flow applies them."""
from __future__ import annotations

import pyarrow as pa
from datatrove.data import Document

from corpora.config import StrictModel
from filters.c4 import C4BadWordsConfig, C4Config, c4_badwords, c4_quality, wordlist_path
from filters.decision import Decision
from filters.fineweb import FineWebConfig, fineweb_quality
from filters.gopher import GopherQualityConfig, GopherRepetitionConfig, gopher_quality, gopher_repetition
from filters.langid import LangIdConfig, find_lid_model, langid, load_fasttext
from filters.pii import PIIConfig, pii
from filters.quality import QualityConfig, QualityModel, quality
from filters.steps import FilterStep, doc_words
from filters.text import split_words
from filters.toxicity import ToxicityConfig, load_wordlist, toxicity
from filters.url_blocklist import UrlBlocklistConfig, load_blocklist, url_blocklist


class UrlBlocklistStep(FilterStep):
    name = "🚫 URL blocklist"
    config_name = "url_blocklist"

    def __init__(self, config: UrlBlocklistConfig, **kw):
        super().__init__(config, **kw)
        if not any(load_blocklist(config)):  # fail at build time on a bad path or empty lists
            raise ValueError("filters.url_blocklist: no entries (set domains_path, urls_path, domains or urls)")

    def decide(self, doc: Document) -> Decision:
        return url_blocklist(doc.metadata.get("url"), self.config)


class LangIdStep(FilterStep):
    name = "🌍 Language ID (lid.176)"
    config_name = "langid"
    columns = [pa.field("language", pa.string()), pa.field("language_score", pa.float64())]

    def __init__(self, config: LangIdConfig, **kw):
        super().__init__(config, **kw)
        self.model_path = str(find_lid_model(config.model_path))  # fail at build time, not in a worker
        self._model = None

    def decide(self, doc: Document) -> Decision:
        if self._model is None:
            self._model = load_fasttext(self.model_path)
        return langid(doc.text, self.config, self._model)


class GopherQualityStep(FilterStep):
    name = "🥇 Gopher quality"
    config_name = "gopher_quality"
    columns = [pa.field("gopher_words", pa.int64())]

    def decide(self, doc: Document) -> Decision:
        return gopher_quality(doc.text, self.config, doc_words(doc, split_words))


class GopherRepetitionStep(FilterStep):
    name = "👯 Gopher repetition"
    config_name = "gopher_repetition"

    def decide(self, doc: Document) -> Decision:
        return gopher_repetition(doc.text, self.config, doc_words(doc, split_words))


class C4Step(FilterStep):
    name = "⛰ C4 quality"
    config_name = "c4"
    columns = [pa.field("c4_lines_removed", pa.int64()), pa.field("c4_original_chars", pa.int64())]
    has_spans = True  # removed lines (line mode)

    def decide(self, doc: Document) -> Decision:
        return c4_quality(doc.text, self.config)


class C4BadWordsStep(FilterStep):
    name = "⛰ C4 bad words"
    config_name = "c4_badwords"

    def __init__(self, config: C4BadWordsConfig, **kw):
        super().__init__(config, **kw)
        for lang in config.wordlists:
            wordlist_path(config, lang)  # fail early on a bad path

    def decide(self, doc: Document) -> Decision:
        return c4_badwords(doc.text, self.config, doc.metadata.get("language"), str(doc.id))


class FineWebStep(FilterStep):
    name = "🍷 FineWeb quality"
    config_name = "fineweb"
    columns = [pa.field("fineweb_line_punct_ratio", pa.float64())]

    def decide(self, doc: Document) -> Decision:
        # the words only when its newline rule needs them (after C4 cleaned the text they are new)
        return fineweb_quality(doc.text, self.config, lambda: doc_words(doc, split_words))


class PIIStep(FilterStep):
    name = "🔒 PII"
    config_name = "pii"
    columns = [pa.field("pii_emails", pa.int64()), pa.field("pii_phones", pa.int64()),
               pa.field("pii_ips", pa.int64()), pa.field("pii_original_chars", pa.int64())]
    has_spans = True  # the matches

    def decide(self, doc: Document) -> Decision:
        return pii(doc.text, self.config)


class ToxicityStep(FilterStep):
    name = "☣ Toxicity"
    config_name = "toxicity"
    columns = [pa.field("toxic_words", pa.int64()), pa.field("toxic_word_ratio", pa.float64()),
               pa.field("toxicity_score", pa.float64())]

    def __init__(self, config: ToxicityConfig, **kw):
        super().__init__(config, **kw)
        load_wordlist(config.wordlist_path)  # fail early on a bad path
        self._clf = None

    def decide(self, doc: Document) -> Decision:
        if self.config.classifier_path and self._clf is None:
            self._clf = load_fasttext(self.config.classifier_path)
        return toxicity(doc.text, self.config, self._clf)


class QualityStep(FilterStep):
    name = "⭐ Quality classifier"
    config_name = "quality"
    columns = [pa.field("quality_score", pa.float64())]

    def __init__(self, config: QualityConfig, **kw):
        super().__init__(config, **kw)
        if not config.model:
            raise ValueError("filters.quality.model: required when filters.quality.enabled is true "
                             "(train one with `flows run quality-train`)")
        QualityModel(config.model)  # fail early on a bad model folder
        self._model = None

    def decide(self, doc: Document) -> Decision:
        if self._model is None:
            self._model = QualityModel(self.config.model)
        return quality(doc.text, self.config, self._model)


class WebFilters(StrictModel):
    """`filters.<name>` of the dolma config, applied in this order."""

    url_blocklist: UrlBlocklistConfig = UrlBlocklistConfig()
    langid: LangIdConfig = LangIdConfig()
    gopher_quality: GopherQualityConfig = GopherQualityConfig()
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig()
    c4: C4Config = C4Config()
    c4_badwords: C4BadWordsConfig = C4BadWordsConfig()
    fineweb: FineWebConfig = FineWebConfig()
    pii: PIIConfig = PIIConfig()
    toxicity: ToxicityConfig = ToxicityConfig()
    quality: QualityConfig = QualityConfig()


STEP_CLASSES: dict[str, type[FilterStep]] = {
    "url_blocklist": UrlBlocklistStep, "langid": LangIdStep, "gopher_quality": GopherQualityStep,
    "gopher_repetition": GopherRepetitionStep, "c4": C4Step, "c4_badwords": C4BadWordsStep, "fineweb": FineWebStep, "pii": PIIStep, "toxicity": ToxicityStep, "quality": QualityStep,
}


def build_filter_steps(filters: WebFilters, layout=None, drop: bool = False, tag_only: bool = False
                       ) -> list[FilterStep]:
    steps = []
    for order, name in enumerate(STEP_CLASSES, start=1):
        cfg = getattr(filters, name)
        if cfg.enabled:
            steps.append(STEP_CLASSES[name](cfg, layout=layout, order=order, drop=drop, tag_only=tag_only))
    return steps


def score_fields(steps: list[FilterStep]) -> list[pa.Field]:
    fields, seen = [], set()
    for s in steps:
        for f in s.output_columns():
            if f.name not in seen:
                seen.add(f.name)
                fields.append(f)
    return fields
