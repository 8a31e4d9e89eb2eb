"""Other works of the same author as evidence: lists read from title pages and publishers' pages, the upper bound
they give the works they name, and how the combiner reads "existed by"."""
import json

import numpy as np

from filters.dating.bibliography import listed_titles, listing_evidence, main_title, normalise_title, title_listed
from filters.dating.combine import combine_evidence, evidence_likelihood, year_grid
from filters.dating.evidence import Evidence

TITLE_PAGE = """TWO LITTLE SAVAGES

Being the ADVENTURES of Two BOYS

Written & Illustrated by

ERNEST THOMPSON SETON

Author of _Wild Animals I have Known_, _Lives of the Hunted_,
_Biography of a Grizzly_, _Trail of the Sandhill Stag_, etcetera,
& Naturalist to the Government of Manitoba.

1917
"""

BOXED = """
+---------------------------------------+
|                                       |
|          BY THE SAME AUTHOR           |
|                                       |
|                                       |
| THE BOOK OF WOODCRAFT AND INDIAN LORE |
|                                       |
| TWO LITTLE SAVAGES                    |
|                                       |
+---------------------------------------+




WILD ANIMALS AT HOME
"""


def test_inline_author_of_list_with_a_title_broken_over_lines():
    text = ('KILMENY\n\nBy L. M. MONTGOMERY\n\nAuthor of "Anne of Green Gables," "Anne of the\nIsland," '
            '"Chronicles of Avonlea," etc.\n\nCHAPTER I\n')
    assert listed_titles(text) == ["anne of green gables", "anne of the island", "chronicles of avonlea"]


def test_italic_list_on_a_title_page_and_a_boxed_list():
    assert listed_titles(TITLE_PAGE)[:4] == ["wild animals i have known", "lives of the hunted",
                                            "biography of a grizzly", "trail of the sandhill stag"]
    assert listed_titles(BOXED) == ["book of woodcraft and indian lore", "two little savages"]


def test_prose_and_books_in_preparation_are_not_listed():
    prose = "The author of this work is no amateur in the field.\n\nHe wrote much.\n"
    assert listed_titles(prose) == []
    ads = "BY THE SAME AUTHOR\n\nThe Red Hill\nThe Blue Lake\nIn Preparation\nThe Green Sea\n\n\nCHAPTER I"
    assert listed_titles(ads) == ["red hill", "blue lake"]


def test_title_matching_ignores_articles_apostrophes_and_subtitles():
    assert normalise_title("Anne’s House of Dreams") == "annes house of dreams"
    assert main_title("Two Little Savages: Being the Adventures of Two Boys") == "Two Little Savages"
    assert title_listed("The Book of Woodcraft", ["book of woodcraft and indian lore"]) is not None
    assert title_listed("Savages", ["two little savages"]) is None  # a one-word prefix is not the same title
    assert title_listed("Wild Animals I Have  Known", ["wild animals i have known"]) == "wild animals i have known"


def _row(wid, title, year, high, listed=(), author="Ernest Thompson Seton", birth=1860, death=1946):
    return {"id": wid, "title": title, "author": author, "author_birth": birth, "author_death": death,
            "year": year, "year_low": None if year is None else year - 1, "year_high": high, "source": f"{wid}.txt",
            "evidence": json.dumps({"evidence": [], "summary": {"lists_titles": list(listed)}})}


def test_a_listed_work_is_bounded_by_the_listing_works_date_and_never_the_reverse():
    rows = [_row("savages", "Two Little Savages", 1917, 1917, listed=["wild animals i have known"]),
            _row("home", "Wild Animals at Home", 1913, 1913,
                 listed=["two little savages", "wild animals i have known"]),
            _row("wild", "Wild Animals I Have Known", 1900, 1905)]
    ev = listing_evidence(rows)
    assert set(ev) == {"savages", "wild"}  # "home" is listed by nobody; listing says nothing about the lister
    assert ev["savages"][0].high == 1913 and ev["savages"][0].role == "upper"
    assert ev["savages"][0].detail["existed_by"] and ev["savages"][0].detail["listing_work"] == "home"
    assert ev["wild"][0].high == 1913  # the tightest of the two lists naming it


def test_other_authors_copies_and_undated_listers_do_not_count():
    rows = [_row("a", "The Red Hill", None, None),
            _row("b", "The Blue Lake", 1900, 1901, listed=["red hill"], author="Someone Else", birth=1850, death=1920),
            _row("c", "The Green Sea", None, None, listed=["red hill"]),
            _row("d", "The Red Hill", 1899, 1899, listed=["red hill"])]  # another copy of the same book
    assert listing_evidence(rows) == {}


def test_existed_by_favours_no_year_below_its_bound():
    grid = year_grid()
    ev = Evidence("listed_by_other_work", "upper", high=1931, confidence=0.7, detail={"existed_by": True})
    lk = evidence_likelihood(ev, grid)
    below = lk[grid <= 1931]
    assert np.allclose(below, below[0]) and lk[grid == 1935][0] < below[0]
    # a weak bound far after the other evidence must not pull the year towards it (a later edition's date would)
    base = [Evidence("style", "dist", detail={"slice_probs": {"1880_1910": 0.4, "1910_1940": 0.6}})]
    alone = combine_evidence(base)
    bounded = combine_evidence(base + [ev])
    assert bounded.year <= alone.year
    assert bounded.date_source is not None
