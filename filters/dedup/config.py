"""`dedup.<name>` config (pydantic, unknown keys are errors): url, exact, paragraph, minhash, decontam, run in this
order after the filters. Each section converts to the plain dataclass its module uses."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from corpora.config import StrictModel
from filters.dedup.decontam import BenchmarkSpec, DecontamConfig
from filters.dedup.exact import ExactConfig
from filters.dedup.minhash import MinHashConfig
from filters.dedup.paragraphs import ParagraphDedupConfig
from filters.dedup.urls import UrlNormConfig

KeepPolicyName = Literal["highest_quality", "longest", "smallest_id"]


class UrlDedup(StrictModel):
    enabled: bool = True
    # prebuilt indexes: earlier runs' output folders (or their `dedup_index/`): documents they already hold are
    # removed (reason_detail = the id there), those corpora are not read or rewritten
    index: list[str] = []

    @field_validator("index", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v
    ignore_scheme: bool = False  # http:// and https:// are the same page
    strip_www: bool = False  # www.example.com and example.com are the same host
    drop_tracking: bool = True  # utm_*, fbclid, gclid, ...

    def options(self) -> UrlNormConfig:
        return UrlNormConfig(ignore_scheme=self.ignore_scheme, strip_www=self.strip_www,
                             drop_tracking=self.drop_tracking)


class ExactDedup(StrictModel):
    enabled: bool = True
    # prebuilt indexes: earlier runs' output folders (or their `dedup_index/`): documents they already hold are
    # removed (reason_detail = the id there), those corpora are not read or rewritten
    index: list[str] = []

    @field_validator("index", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v
    lowercase: bool = False

    def options(self) -> ExactConfig:
        return ExactConfig(lowercase=self.lowercase)


class ParagraphDedup(StrictModel):
    enabled: bool = True
    expected_items: int = Field(10_000_000, ge=1)  # paragraphs (n-grams in n-gram mode) the Bloom filter is sized for
    false_positive_rate: float = Field(1e-4, gt=0, lt=1)
    max_memory: str = "1GiB"  # a bigger filter is refused with the numbers, never silently shrunk
    seed: int = 0
    min_paragraph_chars: int = Field(1, ge=0)  # shorter paragraphs are never removed (Dolma's min_length)
    min_words: int = Field(0, ge=0)  # paragraphs with fewer word tokens are never removed (Dolma's min_words)
    skip_empty: bool = True  # blank paragraphs are never removed (False needs min_paragraph_chars=0 to matter)
    paragraph_separator: str = Field("\n", min_length=1)
    min_doc_chars: int = Field(50, ge=0)  # a document left shorter than this after removal is removed
    ngram_size: int | None = Field(None, ge=1)  # set (e.g. 13) for the n-gram overlap mode (Dolma's by_ngram)
    overlap_threshold: float = Field(0.8, ge=0, le=1)
    stride: int = Field(1, ge=1)  # n-gram mode: one n-gram every `stride` tokens
    skip_short_paragraphs: bool = False  # n-gram mode: paragraphs shorter than ngram_size are never removed

    def options(self) -> ParagraphDedupConfig:
        return ParagraphDedupConfig(
            expected_items=self.expected_items, false_positive_rate=self.false_positive_rate,
            max_memory=self.max_memory, seed=self.seed, min_paragraph_chars=self.min_paragraph_chars,
            min_words=self.min_words, skip_empty=self.skip_empty, paragraph_separator=self.paragraph_separator,
            min_doc_chars=self.min_doc_chars, ngram_size=self.ngram_size, overlap_threshold=self.overlap_threshold,
            stride=self.stride, skip_short_paragraphs=self.skip_short_paragraphs)


class MinHashDedup(StrictModel):
    enabled: bool = True
    # prebuilt indexes: earlier runs' output folders (or their `dedup_index/`): documents they already hold are
    # removed (reason_detail = the id there), those corpora are not read or rewritten
    index: list[str] = []

    @field_validator("index", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v
    ngram_size: int = Field(5, ge=1)
    num_bands: int = Field(14, ge=1)
    rows_per_band: int = Field(8, ge=1)
    seed: int = 1
    verify_threshold: float = Field(0.7, ge=0, le=1)  # 0: link every LSH collision (FineWeb/datatrove behaviour)
    bucket_partitions: int = Field(1, ge=1)  # split each band's buckets by hash range (less memory per bucket task)
    bucket_tasks: int = Field(14, ge=1)  # parallel bucket tasks

    def options(self) -> MinHashConfig:
        return MinHashConfig(ngram_size=self.ngram_size, num_bands=self.num_bands, rows_per_band=self.rows_per_band,
                             seed=self.seed, verify_threshold=self.verify_threshold)


class Benchmark(StrictModel):
    path: str
    field: str | list[str] = "text"  # a column / dotted JSON path, or several joined by a space
    # or a question/answer benchmark: its prompt and gold fields, and which n-grams to look for (datatrove's
    # NGramsDecont: answer = the gold's, query = the prompt's, straddle = those crossing from prompt into gold)
    query: str | list[str] | None = None
    answer: str | list[str] | None = None
    parts: list[Literal["query", "answer", "straddle"]] = ["answer", "straddle"]


class DecontamDedup(StrictModel):
    enabled: bool = False
    benchmarks: dict[str, Benchmark] = {}
    ngram_size: int = Field(13, ge=1)
    threshold: float = 0.5  # matched characters / benchmark item characters (Cosmopedia)
    action: Literal["flag", "remove"] = "remove"

    @field_validator("threshold")
    @classmethod
    def _ratio(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError("threshold must be in (0, 1]")
        return v

    def options(self) -> DecontamConfig:
        return DecontamConfig(ngram_size=self.ngram_size, threshold=self.threshold)

    def specs(self) -> dict[str, BenchmarkSpec]:
        tup = (lambda v: tuple(v) if isinstance(v, list) else v)
        return {name: BenchmarkSpec(path=b.path, field=tup(b.field), query=tup(b.query), answer=tup(b.answer),
                                    parts=tuple(b.parts)) for name, b in self.benchmarks.items()}


class DedupConfig(StrictModel):
    """Stages run in this order; `keep` decides which member of a url/exact/minhash cluster stays."""

    keep: KeepPolicyName = "highest_quality"  # then longest, then smallest id
    quality_field: str = "quality_score"
    url: UrlDedup = UrlDedup()
    exact: ExactDedup = ExactDedup()
    paragraph: ParagraphDedup = ParagraphDedup()
    minhash: MinHashDedup = MinHashDedup()
    decontam: DecontamDedup = Field(default_factory=DecontamDedup)
    write_index: bool = True  # write `<output>/dedup_index/` (url/exact/minhash signatures of the kept rows)

    def index_dirs(self, method: str) -> list[str]:
        from filters.dedup.index import resolve_index

        return [str(resolve_index(p, method)) for p in getattr(self, method).index]

    def enabled(self) -> list[str]:
        return [n for n in ("url", "exact", "paragraph", "minhash", "decontam") if getattr(self, n).enabled]

    def check(self) -> None:
        """Errors a run would hit late, raised before it starts."""
        for m in ("url", "exact", "minhash"):
            if getattr(self, m).index and getattr(self, m).enabled:
                self.index_dirs(m)  # a missing index: FileNotFoundError naming it
        if self.paragraph.enabled:
            self.paragraph.options().sizing()  # raises BloomTooLarge past max_memory
        if self.decontam.enabled:
            if not self.decontam.benchmarks:
                raise ValueError("dedup.decontam.benchmarks: give at least one {name: {path, field}} when "
                                 "dedup.decontam.enabled is true")
            from filters.dedup.decontam import load_benchmark

            for name, spec in self.decontam.specs().items():
                load_benchmark(spec)  # missing file / field -> BenchmarkError naming file and row
