"""Combining evidence: strong evidence decides, traps and noise do not, the author's life constrains without
discarding, every result says where its date came from or why there is none."""
import json

from filters.dating.authors import AuthorMatch, AuthorRecord
from filters.dating.combine import combine_evidence, work_flags
from filters.dating.evidence import Evidence


def author(birth, death, alternatives=()):
    return AuthorMatch(AuthorRecord("Doe, Jane", birth, death, source="authors.csv row 2"), 100.0, "Doe, Jane",
                       tuple(alternatives))


def test_copyright_decides_over_a_weak_latest_mention():
    ev = [Evidence("copyright", "point", year=1904, confidence=0.9, source="text@10"),
          Evidence("latest_mention", "lower", low=1931, confidence=0.45, source="text@900")]
    r = combine_evidence(ev, author(1866, 1943))
    assert r.year == 1904 and r.slice == "1880_1910" and r.date_source == "copyright"
    assert r.year_low <= 1904 <= r.year_high and r.confidence > 0.9


def test_reprint_preface_does_not_move_an_1850_novel():
    ev = [Evidence("preface_date", "point", year=1849, confidence=0.8),
          Evidence("later_edition_preface", "upper", high=1910, confidence=0.85)]
    r = combine_evidence(ev, author(1810, 1880))
    assert r.year in (1849, 1850) and r.slice in ("1820_1850", "1850_1880")
    assert "later_edition_text" in r.flags


def test_reprint_title_page_alone_pulls_to_the_edition_but_author_life_bounds_it():
    # a title page of 1917 for an author who died in 1890: the work cannot be from 1917
    ev = [Evidence("title_page_year", "upper", high=1917, confidence=0.8, detail={"likely_exact": True})]
    r = combine_evidence(ev, author(1830, 1890))
    assert r.year <= 1900
    r_alone = combine_evidence(ev, None)
    assert r_alone.year == 1917


def test_posthumous_first_edition_is_kept_and_flagged_not_discarded():
    ev = [Evidence("first_published", "point", year=1925, confidence=0.95)]
    r = combine_evidence(ev, author(1840, 1900))
    assert r.year == 1925 and "outside_author_lifetime" in r.flags


def test_author_life_alone_gives_a_wide_dated_range():
    r = combine_evidence([], author(1858, 1924))
    assert r.year is not None and r.date_source == "author_prior"
    assert r.year_high - r.year_low >= 20 and 1873 <= r.year <= 1934


def test_no_evidence_at_all_gives_a_reason():
    r = combine_evidence([], None)
    assert r.year is None and r.slice is None and r.reason.startswith("no evidence")
    assert json.loads(r.evidence_json())["evidence"] == []


def test_style_alone_picks_the_likely_slice():
    ev = [Evidence("style", "dist", confidence=0.7,
                   detail={"slice_probs": {"1750_1820": 0.05, "1820_1850": 0.7, "1850_1880": 0.15,
                                           "1880_1910": 0.05, "1910_1940": 0.05}})]
    r = combine_evidence(ev, None)
    assert r.slice == "1820_1850" and "no_text_dates" in r.flags


def test_range_evidence_flags_a_collection_and_keeps_the_range():
    ev = [Evidence("title_years", "range", low=1909, high=1922, confidence=0.8)]
    r = combine_evidence(ev, author(1874, 1942))
    assert 1909 <= r.year <= 1922 and "collection" in r.flags


def test_evidence_json_records_everything_and_the_author():
    ev = [Evidence("copyright", "point", year=1913, confidence=0.9, source="text@5", snippet="Copyright, 1913")]
    r = combine_evidence(ev, author(1860, 1946, [AuthorRecord("Doe, Jane", 1900, 1970)]))
    data = json.loads(r.evidence_json())
    assert [e["kind"] for e in data["evidence"]] == ["copyright", "author_lifetime"]
    assert data["evidence"][1]["detail"]["birth"] == 1860 and "ambiguous_author" in r.flags
    assert data["summary"]["p_within_5"] > 0.9


def test_conflicting_points_are_flagged():
    ev = [Evidence("copyright", "point", year=1880, confidence=0.9),
          Evidence("first_published", "point", year=1900, confidence=0.95)]
    assert "conflicting_evidence" in combine_evidence(ev, None).flags


def test_work_flags():
    assert "collection" in work_flags("Lucy Maud Montgomery Short Stories, 1904", "L. M. Montgomery")
    assert "collection" in work_flags("Birds and Bees, Sharp Eyes, and Other Papers", "John Burroughs")
    assert work_flags("The Railway Children", "E. Nesbit") == []
    assert "translation" in work_flags("Faust", "Goethe", translator="Bayard Taylor")
    assert "translation" in work_flags("Faust", "Goethe", text_head="Translated from the German by B. Taylor")
    assert "multi_author" in work_flags("Tales", "Jane Doe and John Roe")
    assert "multi_author" not in work_flags("A Dog of Flanders", "Louisa de la Ramee, AKA Ouida")
    assert {"collection", "multi_author"} <= set(work_flags("Best Stories", "Various"))
