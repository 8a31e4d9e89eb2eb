"""Project Gutenberg header/footer/licence stripping and header metadata, on the real shared files and on
hand-written ones."""
import re

import pytest

from corpora.gutenberg import (EBOOK_DATE_FIELDS, NotGutenbergError, parse_header, read_gutenberg_file,
                               split_gutenberg, strip_boilerplate)
from tests.conftest import shared_path

BOILERPLATE = re.compile(r"project\s+gutenberg|gutenberg\.org|start of (?:this|the) project|"
                         r"end of (?:this|the) project|full license|Section 1\. General Terms",
                         re.IGNORECASE)


def test_real_files_lose_header_footer_and_licence():
    texts = sorted(shared_path("data", "gutenberg", "texts").glob("*.txt"))
    assert len(texts) >= 40
    for f in texts:
        raw = f.read_text(encoding="utf-8", errors="replace")
        book = read_gutenberg_file(f)
        assert book.has_markers, f.name
        assert book.id == f.stem, f"{f.name}: ebook number from header {book.id}"
        assert book.header.title and book.header.author, f.name
        assert not BOILERPLATE.search(book.body), f"{f.name}: {BOILERPLATE.search(book.body).group()!r} left"
        assert not re.match(r"\s*(Produced by|E-text prepared by|Note: Project)", book.body), f.name
        # the licence is long: the book is most of the file, and nothing after the end marker survives
        assert len(book.body) < len(raw)
        assert "Michael S. Hart" not in book.body
        # ebook dates are exposed for traceability but never reach the text the extractors read
        for value in book.header.ebook_dates.values():
            assert value not in book.body, f"{f.name}: ebook date {value!r} leaked into the body"


def test_real_header_fields():
    book = read_gutenberg_file(shared_path("data", "gutenberg", "texts", "1354.txt"))
    h = book.header
    assert (h.title, h.author, h.language) == ("Chronicles of Avonlea", "Lucy Maud Montgomery", "English")
    assert set(h.ebook_dates) == {"release_date", "posting_date", "last_updated"}
    assert h.ebook_dates["release_date"] == "June, 1998"  # the ebook's date, not the book's (1912)
    assert book.body.startswith("CHRONICLES OF AVONLEA")
    assert book.body.rstrip().endswith("he said.")


def test_multiline_title_is_joined():
    book = read_gutenberg_file(shared_path("data", "gutenberg", "texts", "13249.txt"))
    assert book.header.title == "Our Vanishing Wild Life Its Extermination and Preservation"


HANDMADE = """\ufeffThe Project Gutenberg EBook of A Small Book, by Jane Doe\r
\r
Title: A Small Book\r
       Being a Test\r
\r
Author: Jane Doe\r
\r
Translator: John Roe\r
\r
Release Date: May 5, 2009 [EBook #99999]\r
Posting Date: June 1, 2011\r
\r
Language: English\r
\r
*** START OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***\r
\r
\r
\r
Produced by Volunteers and the Online Distributed\r
Proofreading Team at http://www.pgdp.net\r
\r
\r
\r
\r
TRANSCRIBER'S NOTES\r
\r
Obvious typos were corrected.\r
\r
\r
\r
\r
A SMALL BOOK\r
\r
It was a dark night in 1850.\r
\r
THE END\r
\r
End of the Project Gutenberg EBook of A Small Book, by Jane Doe\r
\r
*** END OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***\r
\r
Section 1. General Terms of Use and Redistributing Project Gutenberg-tm\r
"""


def test_handmade_file_header_and_body():
    h = parse_header(HANDMADE)
    assert h.title == "A Small Book Being a Test"
    assert (h.author, h.translator, h.ebook_id, h.language) == ("Jane Doe", "John Roe", "99999", "English")
    assert h.ebook_dates == {"release_date": "May 5, 2009", "posting_date": "June 1, 2011"}
    assert set(h.ebook_dates) <= set(EBOOK_DATE_FIELDS)
    body = strip_boilerplate(HANDMADE)
    assert body == "A SMALL BOOK\n\nIt was a dark night in 1850.\n\nTHE END"


def test_plain_text_without_markers_is_kept_whole():
    text = "A plain book.\n\nWritten in 1820.\n"
    assert strip_boilerplate(text) == "A plain book.\n\nWritten in 1820."
    with pytest.raises(NotGutenbergError):
        split_gutenberg(text)


def test_old_small_print_marker():
    raw = ("The Project Gutenberg Etext of Old Book\n\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*"
           "\n\nOLD BOOK\n\nText of the old book.\n\nEnd of this Project Gutenberg Etext of Old Book\n")
    assert strip_boilerplate(raw) == "OLD BOOK\n\nText of the old book."
