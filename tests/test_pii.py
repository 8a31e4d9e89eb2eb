"""PII: hand-written cases for the defects of issue 12 (phones too loose, private IPs, email edge cases)."""
from filters.pii import PIIConfig, find_pii, pii

CFG = PIIConfig()


def _counts(text: str) -> tuple[int, int, int]:
    s = pii(text, CFG).scores
    return s["pii_emails"], s["pii_phones"], s["pii_ips"]


def test_year_drop_down_page_is_kept_untouched():
    years = " ".join(str(y) for y in range(2019, 1934, -1))  # 85 years, as on the archive page
    page = f"Regulation Taxes on Expression\nArchive\n{years}\nCourt opinions by year\n" + "\n".join(
        f"{y} {y - 1} {y - 2}" for y in range(2019, 1990, -3))
    d = pii(page, CFG)
    assert d.keep and d.scores == {"pii_emails": 0, "pii_phones": 0, "pii_ips": 0}
    assert d.text is None  # nothing masked: the text is unchanged


def test_number_lists_and_dotted_numbers_are_not_phones():
    for text in ["Scores: 100 200 300 points", "2019 2018 2017", "Item 111.222.333 is out of stock",
                 "Version 1.2.3.4.5 costs 1999 dollars in 2024.", "ids 0061994936 and 1577836800",
                 "0111 1111 1111 2222", "12.345.6789", "call 555\n123\n4567", "555-123-45678"]:
        assert _counts(text) == (0, 0, 0), text


def test_real_phone_shapes_are_found_and_masked_within_their_line():
    text = ("Call (555) 123-4567 or 555.123.4567,\n555 123 4567 (fax)\nand +1 555-123-4567; "
            "Phone: 503-352-3690")
    d = pii(text, CFG)
    assert d.scores["pii_phones"] == 5
    assert d.text.count("\n") == text.count("\n") == 2
    assert d.text.split("\n")[1] == "|||PHONE_NUMBER||| (fax)"
    assert "+1" not in d.text
    for span in find_pii(text)["phone"]:
        assert "\n" not in text[span[0]:span[1]]


def test_isbn_doi_and_hash_context_drop_matches():
    assert _counts("ISBN 123-456-7890 (paperback)") == (0, 0, 0)
    assert _counts("see doi: 10.1000/182 and 555 123 4567") == (0, 0, 0)
    assert _counts("Order # 555 123 4567 shipped") == (0, 0, 0)
    assert _counts("Doing well, call 555-123-4567") == (0, 1, 0)  # "doi" is a word, not a substring
    far = "ISBN 0-306-40615-2." + " filler" * 20 + " Call 555-123-4567."
    assert _counts(far) == (0, 1, 0)  # farther than context_window
    assert pii("ISBN 123-456-7890", PIIConfig(context_window=0)).scores["pii_phones"] == 1


def test_nine_loopback_ips_page_is_kept():
    qa = "\n".join(f"Q{i}: my server listens on 127.0.0.1:80{i}, why can't I reach it from outside?"
                   for i in range(9))
    d = pii(qa, CFG)
    assert d.keep and d.scores["pii_ips"] == 0 and d.text is None


def test_only_public_ips_are_counted_and_masked():
    private = "10.0.0.12 172.16.0.5 192.168.1.1 127.0.0.1 0.0.0.0 169.254.1.1 192.0.2.10 fe80:0:0:0:0:0:0:1"
    assert _counts(private) == (0, 0, 0)
    d = pii("Resolvers 8.8.8.8 and 172.32.0.1, v6 2001:4860:4860:0:0:0:0:8888; LAN 10.1.1.1.", CFG)
    assert d.scores["pii_ips"] == 3
    assert d.text == "Resolvers |||IP_ADDRESS||| and |||IP_ADDRESS|||, v6 |||IP_ADDRESS|||; LAN 10.1.1.1."
    assert _counts("Address 999.1.1.1 is not an IP.") == (0, 0, 0)


def test_ip_after_a_dot_is_found():
    d = pii("The mirror moved...8.8.4.4 now. Its old name was ftp.93.184.216.34 too.", CFG)
    assert d.scores["pii_ips"] == 2
    assert d.text == "The mirror moved...|||IP_ADDRESS||| now. Its old name was ftp.|||IP_ADDRESS||| too."


def test_email_edge_cases():
    d = pii("write to email@123.123.123.123 today", CFG)
    assert d.scores == {"pii_emails": 1, "pii_phones": 0, "pii_ips": 0}
    assert d.text == "write to |||EMAIL_ADDRESS||| today"
    assert pii("or email@[8.8.8.8].", CFG).text == "or |||EMAIL_ADDRESS|||."
    for bad in ["email@-example.com", "email@example-.com", "email@example"]:
        assert _counts(bad) == (0, 0, 0), bad
    assert pii("jane.doe@mail.example.co.uk", CFG).text == "|||EMAIL_ADDRESS|||"


def test_bulk_lists_are_still_removed():
    assert pii(" ".join(f"user{i}@example.org" for i in range(8)), CFG).reason == "too_many_pii"
    phones = "\n".join(f"Office {i}: (555) 123-45{i:02d}" for i in range(6))
    assert pii(phones, CFG).reason == "too_many_pii"
    assert pii(" ".join(f"8.8.{i}.1" for i in range(6)), CFG).reason == "too_many_pii"
