"""Each text extractor on hand-written cases, traps included: a reprint preface dated 1910 in an 1850 novel,
years inside dialogue, the ebook release date, renewals, later impressions, future years, quantities."""
from corpora.gutenberg import strip_boilerplate
from filters.dating.text_evidence import (contents_years, copyright_years, dated_lines, latest_mentioned_year,
                                          publication_statements, quoted_spans, roman_to_int, text_evidence,
                                          title_page_years, title_years, year_mentions)

PROSE = ("It was a fine morning and the village lay quiet under the hill, the smoke rising from every chimney "
         "while the children ran down the lane towards the river and the old miller watched them from his door "
         "with the patience of a man who had seen many such mornings come and go in the valley below.")


def kinds(evs):
    """(kind, role, the year that matters: point -> year, upper -> high, lower/range -> low)."""
    value = {"point": "year", "upper": "high", "lower": "low", "range": "low"}
    return {(e.kind, e.role, getattr(e, value[e.role])) for e in evs}


def test_copyright_takes_the_latest_year_and_skips_renewals_and_captions():
    text = ("THE BOOK\n\n[Illustration: A bear.\nCopyright 1911, by A. Photographer.]\n\n"
            "Copyright, 1906, by the Author\nCopyright, 1907, by Stokes & Co.\n\nCopyright renewed, 1935\n\n"
            + PROSE)
    ev = copyright_years(text)
    point = [e for e in ev if e.role == "point"]
    assert [e.year for e in point] == [1907]
    assert point[0].detail["years"] == [1906, 1907]  # neither the 1911 photo nor the 1935 renewal
    span = [e for e in ev if e.kind == "copyright_earliest"]
    assert (span[0].low, span[0].high) == (1906, 1907)


def test_copyright_list_and_act_of_congress():
    ev = copyright_years("_Copyright 1875, 1879, 1881, 1886, 1894, and 1900,_ by J. B.\n\n" + PROSE)
    assert [e.year for e in ev if e.role == "point"] == [1900]
    ev = copyright_years("Entered according to Act of Congress, in the year 1868, by A. K. Loring, in the "
                         "Clerk's Office.\n\n" + PROSE)
    assert [e.year for e in ev if e.role == "point"] == [1868]


def test_first_published_and_later_impressions():
    text = "FREDERICK WARNE\n\nFirst published 1905\nThis impression 1986\n\n" + PROSE
    ev = publication_statements(text)
    assert ("first_published", "point", 1905) in kinds(ev)
    assert ("later_edition", "upper", 1986) in kinds(ev)
    assert not any(e.role == "point" and e.year == 1986 for e in ev)


def test_first_published_of_a_modern_edition_is_not_the_work():
    text = ("Bibliographical Note\n\nThis Dover edition, first published in 2006, is an unabridged republication "
            "of the work originally published by Angus and Robertson, Sydney, in 1918.\n\n" + PROSE)
    ev = publication_statements(text)
    assert ("later_edition", "upper", 2006) in kinds(ev)
    assert ("first_published", "point", 1918) in kinds(ev)


def test_first_edition_statement_inside_a_second_edition_preface():
    text = ("PREFACE TO THE SECOND EDITION\n\nDuring the seven years which have elapsed since the publication in "
            "1868 of the first edition of this Work, I have continued to attend to the same subjects.\n\n" + PROSE)
    assert ("first_published", "point", 1868) in kinds(publication_statements(text))


def test_statement_about_another_work_is_skipped():
    text = ("PREFACE\n\nThis book is more than a mere reprint of _Birds in a Village_ first published in 1893.\n\n"
            + PROSE)
    assert not [e for e in publication_statements(text) if e.year == 1893 or e.high == 1893]


def test_title_page_year_is_an_upper_bound_likely_exact():
    text = ("TWO LITTLE SAVAGES\n\nBY\n\nERNEST THOMPSON SETON\n\nNEW YORK\nDOUBLEDAY, PAGE & COMPANY\n1917\n\n"
            "By Ernest Seton, 1860-1946\n\n" + PROSE)
    ev = title_page_years(text)
    assert [(e.kind, e.role, e.high) for e in ev] == [("title_page_year", "upper", 1917)]
    assert ev[0].detail["likely_exact"]  # the life dates in the byline are not read as a title-page year


def test_roman_numeral_title_page_year():
    assert roman_to_int("MDCCCLXVIII") == 1868
    ev = title_page_years("THE WORK\n\nLONDON\nJOHN MURRAY\nMDCCCLXVIII.\n\n" + PROSE)
    assert [e.high for e in ev] == [1868]


def test_by_the_same_author_lists_are_not_dates():
    text = ("THE BOOK\n\nBY THE SAME AUTHOR\nOrigin of Species, Fourth Edition. 1866.\nLONDON: MURRAY, 1866\n\n"
            "LONDON\nJOHN MURRAY\n1868.\n\n" + PROSE)
    assert [e.high for e in title_page_years(text)] == [1868]


def test_reprint_preface_dated_1910_in_an_1850_novel():
    text = ("THE OLD MILL\n\nPREFACE TO THE NEW EDITION\n\nThe author is glad that this tale, so long out of print, "
            "is to be read again by a new generation of readers who never knew the old mill.\n\n"
            "London, March, 1910.\n\n"
            "PREFACE\n\nThese pages were written in the country, far from the noise of the town, and are offered "
            "to the reader with every apology for their faults.\n\nLondon, October, 1849.\n\n"
            "CHAPTER I\n\n" + PROSE)
    ev = dated_lines(text)
    assert ("later_edition_preface", "upper", 1910) in kinds(ev)
    assert ("preface_date", "point", 1849) in kinds(ev)
    assert not any(e.role == "point" and e.year == 1910 for e in ev)


def test_signature_dates_and_dated_letters():
    text = ("RAGGED DICK\n\nPREFACE\n\nThe story was written for boys.\n\nNew York, April, 1868\n\n"
            "CHAPTER I\n\n" + PROSE + "\n\nBoston, June 3rd, 1866.\n\nDear Mother,\n\n" + PROSE)
    ev = dated_lines(text)
    assert ("preface_date", "point", 1868) in kinds(ev)
    letters = [e for e in ev if e.kind == "dated_letters"]
    assert letters and letters[0].role == "lower" and letters[0].low == 1866


def test_years_in_dialogue_and_future_years_are_not_lower_bounds():
    text = ("CHAPTER I\n\n" + PROSE + " The mill was built in 1790 and burned in 1841.\n\n"
            "\u201cIn 1950 men will fly to the moon,\u201d said the boy.\n\n"
            "'By 1900 we shall all be rich,' laughed his father.\n\n"
            "The close season lasts until 1860, when shooting may begin again.\n\n"
            "Not more than one in 2000 sorts survived; about 1900 men came to see it.\n\n" + PROSE)
    years = [m.year for m in year_mentions(text)]
    assert 1790 in years and 1841 in years
    assert not {1950, 1900, 1860, 2000} & set(years)
    ev = latest_mentioned_year(text)
    assert [(e.kind, e.role, e.low) for e in ev] == [("latest_mention", "lower", 1841)]


def test_quoted_spans_pair_straight_and_curly_quotes():
    text = 'He said "it was 1850" and she said \u201cno, 1851\u201d.'
    spans = quoted_spans(text)
    assert any(text[a:b] == '"it was 1850"' for a, b in spans)
    assert any(text[a:b] == "\u201cno, 1851\u201d" for a, b in spans)


def test_ebook_release_date_never_becomes_evidence():
    raw = ("Title: The Old Mill\nAuthor: A. Writer\n\nRelease Date: March 16, 2005 [EBook #15387]\n"
           "Posting Date: May 1, 2009\n\n*** START OF THIS PROJECT GUTENBERG EBOOK THE OLD MILL ***\n\n"
           "THE OLD MILL\n\nCopyright, 1912, by A. Writer\n\n" + PROSE +
           "\n\n*** END OF THIS PROJECT GUTENBERG EBOOK THE OLD MILL ***\n\nUpdated 2019.\n")
    ev = text_evidence(strip_boilerplate(raw), "The Old Mill")
    years = {y for e in ev for y in (e.year, e.low, e.high) if y}
    assert years == {1912}
    assert not years & {2005, 2009, 2019}


def test_title_years_range_point_and_subject():
    assert kinds(title_years("Short Stories, 1896 to 1901")) == {("title_years", "range", 1896)}
    assert kinds(title_years("Kerfol 1916")) == {("title_year", "point", 1916)}
    assert kinds(title_years("The Campaign of 1812")) == {("title_subject_year", "lower", 1812)}
    assert title_years(None) == []


def test_dated_contents_make_a_range():
    text = ("Short Stories\n\n    A Case of Trespass           1897\n    A Christmas Mistake          1899\n"
            "    The Red Room                 1898\n    Young Si                     1901\n\n" + PROSE)
    ev = contents_years(text)
    assert [(e.kind, e.low, e.high) for e in ev] == [("contents_years", 1897, 1901)]
