"""Deduplication and decontamination: url, exact, paragraph (Bloom), MinHash/LSH, n-gram decontamination.

Plain functions (lists of texts, Arrow tables): `minhash.near_duplicate_clusters`, `minhash.dedup_table`,
`minhash.MinHashLSHIndex`, `exact.exact_duplicates`, `urls.url_duplicates`, `paragraphs.dedup_paragraphs`,
`decontam.BenchmarkIndex`. Out of core across shards/workers: `outofcore` (files) and `steps` (datatrove steps);
the whole stage over document Parquet: `stage.DedupStage`.
"""
