"""One work in, one row out: the row invariant (a date or a reason), metadata CSV handling, real books."""
import json

import pyarrow as pa
import pytest

from filters.dating.authors import AuthorIndex, AuthorRecord
from filters.dating.works import (WORKS_SCHEMA, MetadataError, Work, apply_metadata, date_work,
                                  load_metadata_csv, undated_row, work_from_text)
from tests.conftest import shared_path

INDEX = AuthorIndex([AuthorRecord("Potter, Beatrix", 1866, 1943, source="authors.csv row 2"),
                     AuthorRecord("Surtees, Robert Smith", 1805, 1864, ("Surtees, R. S. (Robert Smith)",))])


def test_row_invariant_every_work_has_a_date_or_a_reason():
    works = [
        Work("dated", "Copyright, 1904, by F. Warne\n\nA tale.", "in/a.txt", "A Tale", "Beatrix Potter"),
        Work("author-only", "A tale with no dates at all.", "in/b.txt", "B", "R. S. Surtees"),
        Work("nothing", "A tale with no dates at all.", "in/c.txt", "C", "Nobody Known"),
        Work("no-author", "", "in/d.txt", None, None),
    ]
    rows = [date_work(w, author_index=INDEX) for w in works] + [undated_row("e", "in/e.txt", "invalid UTF-8")]
    table = pa.Table.from_pylist(rows, schema=WORKS_SCHEMA)  # the declared schema holds
    assert table.num_rows == 5
    for r in rows:
        assert (r["year"] is None) == (r["undated_reason"] is not None), r["id"]
        assert r["source"] and r["id"]
        json.loads(r["evidence"])
    by_id = {r["id"]: r for r in rows}
    assert by_id["dated"]["year"] == 1904 and by_id["dated"]["date_source"] == "copyright"
    assert (by_id["dated"]["author_birth"], by_id["dated"]["author_death"]) == (1866, 1943)
    assert by_id["author-only"]["year"] is not None and by_id["author-only"]["date_source"] == "author_prior"
    assert "author_not_found" in by_id["nothing"]["flags"] and by_id["nothing"]["undated_reason"]
    assert "no_author" in by_id["no-author"]["flags"]
    assert by_id["e"]["flags"] == ["unreadable"]


def test_metadata_year_wins_and_is_traced(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("id,title,author,year\nb1,Mr. Sponge,R. S. Surtees,1853\nb2,,,\nb2,dup,,1900\n"
                    ",no id,,\nb3,Bad,,18xx\n", encoding="utf-8")
    rows, problems = load_metadata_csv(meta)
    assert set(rows) == {"b1", "b2", "b3"}
    assert [(p.row, p.reason.split(" ")[0]) for p in problems] == [("row 4", "duplicate"), ("row 5", "empty"),
                                                                    ("row 6", "year")]
    w = apply_metadata(Work("b1", "Preface.\n\n_November 1852_\n\nCHAPTER I\n\nText.", "in/b1.txt"), rows["b1"])
    r = date_work(w, author_index=INDEX)
    assert (w.title, w.author, r["year"], r["date_source"]) == ("Mr. Sponge", "R. S. Surtees", 1853, "metadata_year")
    ev = json.loads(r["evidence"])["evidence"]
    assert ev[0]["kind"] == "metadata_year" and ev[0]["source"] == "meta.csv row 2"


def test_metadata_csv_without_id_column_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("title,author\nX,Y\n")
    with pytest.raises(MetadataError, match="m.csv: metadata CSV needs an 'id' column"):
        load_metadata_csv(bad)


def test_real_gutenberg_books():
    texts = shared_path("data", "gutenberg", "texts")
    potter = work_from_text((texts / "14407.txt").read_text(encoding="utf-8"), "x", "14407.txt")
    assert (potter.id, potter.title, potter.author) == ("14407", "The Tale Of Benjamin Bunny", "Beatrix Potter")
    r = date_work(potter, author_index=INDEX)
    assert r["year"] == 1904 and r["slice"] == "1880_1910"  # never the ebook's 2004
    montgomery = work_from_text((texts / "24878.txt").read_text(encoding="utf-8"), "x", "24878.txt")
    r = date_work(montgomery)
    assert 1909 <= r["year"] <= 1922 and "collection" in r["flags"]
