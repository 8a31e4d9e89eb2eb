"""Authors table loading (three formats, bad rows reported) and the fuzzy name matcher on name variants."""
import json

import pytest

from filters.dating.authors import (AuthorIndex, AuthorRecord, AuthorsTableError, lifetime_window,
                                    load_authors_table, name_score, normalise_name, parse_catalogue_authors,
                                    parse_life_dates)
from tests.conftest import shared_path

RECORDS = [
    AuthorRecord("Surtees, Robert Smith", 1805, 1864, ("Surtees, R. S. (Robert Smith)",)),
    AuthorRecord("Nesbit, E. (Edith)", 1858, 1924, ("Nesbit, Edith", "Bland, Edith Nesbit")),
    AuthorRecord("Nesbit, Hume", None, None),
    AuthorRecord("Seton, Ernest Thompson", 1860, 1946, ("Seton-Thompson, Ernest", "Thompson-Seton, Ernest")),
    AuthorRecord("Ouida", 1839, 1908, ("De la Ramée, Louise", "De La Rame, Louisa")),
    AuthorRecord("Jackson, Helen Hunt", 1830, 1885),
    AuthorRecord("Jackson, William Henry", 1843, 1942),
    AuthorRecord("Parkman, Francis", 1823, 1893),
    AuthorRecord("Montgomery, L. M. (Lucy Maud)", 1874, 1942),
    AuthorRecord("Austen, Jane", 1775, 1817),
    AuthorRecord("Austen, Jane", 1890, 1950),  # a namesake: only the birth hint tells them apart
]


@pytest.fixture(scope="module")
def index():
    return AuthorIndex(RECORDS)


@pytest.mark.parametrize("query, expected", [
    ("R. S. Surtees", "Surtees, Robert Smith"),
    ("Robert Smith Surtees", "Surtees, Robert Smith"),
    ("E. Nesbit", "Nesbit, E. (Edith)"),
    ("Edith Nesbit", "Nesbit, E. (Edith)"),
    ("Ernest Seton-Thompson", "Seton, Ernest Thompson"),
    ("Ernest Thompson Seton", "Seton, Ernest Thompson"),
    ("Louisa de la Ramê, AKA Óuida", "Ouida"),
    ("Louise de la Ramee", "Ouida"),
    ("Helen Jackson", "Jackson, Helen Hunt"),
    ("Francis Parkman, Jr.", "Parkman, Francis"),
    ("Lucy Maud Montgomery", "Montgomery, L. M. (Lucy Maud)"),
    ("MONTGOMERY, LUCY MAUD", "Montgomery, L. M. (Lucy Maud)"),
])
def test_name_variants_match(index, query, expected):
    m = index.match(query)
    assert m is not None and m.record.name == expected and m.score >= 90


def test_different_people_do_not_match(index):
    assert index.match("Hume Nesbit").record.name == "Nesbit, Hume"
    assert index.match("Charles Dickens") is None
    assert index.match("Edward Nesbit") is None  # same surname, different given name
    assert index.match("") is None and index.match(None) is None


def test_birth_hint_separates_namesakes_and_refuses_far_births(index):
    assert index.match("Jane Austen", birth_hint=1775).record.birth == 1775
    assert index.match("Jane Austen", birth_hint=1891).record.birth == 1890
    assert index.match("Jane Austen", birth_hint=1700) is None  # the paper's rule: births within 5 years
    m = index.match("Jane Austen")
    assert m.alternatives and {m.record.birth, m.alternatives[0].birth} == {1775, 1890}


def test_name_normalisation():
    assert normalise_name("Austen, Jane, 1775-1817") == "jane austen"
    assert normalise_name("Hornaday, William T. (William Temple)") == "william temple hornaday"
    assert name_score("W. T. Hornaday", "Hornaday, William Temple") >= 90
    assert name_score("Mark Twain", "Jane Austen") < 60


def test_life_dates_and_window():
    assert parse_life_dates("Austen, Jane, 1775-1817") == ("Austen, Jane", 1775, 1817)
    assert parse_life_dates("Tyndale, William, 1494?-1536") == ("Tyndale, William", 1494, 1536)
    assert parse_life_dates("Virgil, 70 BC-19 BC") == ("Virgil", -70, -19)
    assert parse_life_dates("Doe, John, -1801") == ("Doe, John", None, 1801)
    assert parse_life_dates("Ouida") == ("Ouida", None, None)
    assert lifetime_window(1775, 1817) == (1790, 1827)
    assert lifetime_window(None, 1817) == (1732, 1827)
    assert lifetime_window(None, None) is None


def test_catalogue_authors_field():
    recs = parse_catalogue_authors("Stevenson, Robert Louis, 1850-1894; Crane, Walter, 1845-1915 [Illustrator]")
    assert [(r.name, r.birth, r.death) for r in recs] == [("Stevenson, Robert Louis", 1850, 1894),
                                                          ("Crane, Walter", 1845, 1915)]
    assert recs[1].source == "role=Illustrator"


def test_load_three_formats_and_report_bad_rows(tmp_path):
    cat = tmp_path / "catalog.csv"
    cat.write_text('Text#,Type,Issued,Title,Language,Authors\n'
                   '1342,Text,1998-06-01,Pride and Prejudice,en,"Austen, Jane, 1775-1817"\n'
                   '98,Text,1994-01-01,A Tale of Two Cities,en,"Dickens, Charles, 1812-1870"\n', encoding="utf-8")
    t = load_authors_table(cat)
    assert t.format == "gutenberg_catalogue" and [r.birth for r in t.records] == [1775, 1812]

    authors = tmp_path / "authors.csv"
    authors.write_text('gutenberg_author_id,author,alias,birthdate,deathdate,wikipedia,aliases\n'
                       '68,"Austen, Jane",NA,1775,1817,NA,"Austen, J./Lady, A"\n'
                       '69,"Broken, Row",NA,eighteen,1900,NA,NA\n'
                       '70,NA,NA,1800,1850,NA,NA\n', encoding="utf-8")
    t = load_authors_table(authors)
    assert t.format == "authors_csv" and len(t.records) == 1
    assert t.records[0].aliases == ("Austen, J.", "Lady, A")
    assert [(p.row, p.reason.split(":")[0]) for p in t.problems] == [("row 3", "not a year"),
                                                                      ("row 4", "empty author name")]

    wd = tmp_path / "wikidata.jsonl"
    wd.write_text(json.dumps({"gb_author": "Austen, Jane, 1775-1817", "authorLabel": {"value": "Jane Austen"},
                              "birthDate": {"value": "1775-12-16T00:00:00Z"},
                              "deathDate": {"value": "1817-07-18T00:00:00Z"}}) + "\n{not json\n", encoding="utf-8")
    t = load_authors_table(wd)
    assert t.format == "wikidata_jsonl"
    assert [(r.name, r.birth, r.death, r.aliases) for r in t.records] == [("Austen, Jane", 1775, 1817,
                                                                          ("Jane Austen",))]
    assert t.problems[0].row == "line 2" and "invalid JSON" in t.problems[0].reason


def test_unusable_tables_raise_with_the_file_name(tmp_path):
    bad = tmp_path / "people.csv"
    bad.write_text("name,born\nX,1800\n")
    with pytest.raises(AuthorsTableError, match="people.csv: unknown authors CSV"):
        load_authors_table(bad)
    with pytest.raises(AuthorsTableError, match="does not exist"):
        load_authors_table(tmp_path / "missing.csv")


def test_shared_tables_match_the_shared_books():
    csv_table = load_authors_table(shared_path("data", "gutenberg", "gutenberg_authors.csv"))
    assert len(csv_table.records) > 20000 and not csv_table.problems
    idx = AuthorIndex(csv_table.records)
    m = idx.match("Louisa de la Ramê, AKA Óuida")
    assert (m.record.name, m.record.birth, m.record.death) == ("Ouida", 1839, 1908)
    wd = load_authors_table(shared_path("data", "gutenberg", "gb_authors_wikidata_llm_dates.jsonl"))
    m = AuthorIndex(wd.records).match("R. S. Surtees")
    assert (m.record.birth, m.record.death) == (1805, 1864)
