"""Each filter on hand-written documents with known outcomes."""
import pytest

from filters.c4 import C4Config, c4_quality
from filters.fineweb import FineWebConfig, fineweb_quality
from filters.gopher import GopherQualityConfig, GopherRepetitionConfig, gopher_quality, gopher_repetition
from filters.langid import LangIdConfig, find_lid_model, langid, load_fasttext
from filters.pii import PIIConfig, pii
from filters.text import count_sentences, split_words
from filters.toxicity import ToxicityConfig, toxicity

PROSE = (
    "The river that runs through the old town was once the main road for trade. Barges carried grain, timber "
    "and salt from the hills to the coast, and the warehouses along the banks still show the iron rings where "
    "boats were tied. When the railway arrived, the river traffic declined within a generation. Today the "
    "warehouses hold studios, a small museum and a bakery that opens before dawn. Visitors walk along the "
    "water and read the old signs that still hang above the doors of the buildings."
)


def test_split_words_separates_punctuation_and_clitics():
    assert split_words("It's 3.5 km, isn't it? Mr. Smith went to the U.S. yesterday...") == [
        "It", "'s", "3.5", "km", ",", "is", "n't", "it", "?", "Mr.", "Smith", "went", "to", "the", "U.S.",
        "yesterday", "...",
    ]


def test_split_words_splits_full_width_punctuation():
    assert split_words("你好，世界！再见。") == ["你好", "，", "世界", "！", "再见", "。"]
    assert split_words("「你好」，朋友、同事？今日は晴れ；明日：雨") == [
        "「", "你好", "」", "，", "朋友", "、", "同事", "？", "今日は晴れ", "；", "明日", "：", "雨"]
    assert split_words("Hello！World？") == ["Hello", "！", "World", "？"]
    assert split_words("Tokyo, Japan. Done!") == ["Tokyo", ",", "Japan", ".", "Done", "!"]  # ASCII unchanged


def test_count_sentences():
    assert count_sentences("One. Two! Three? Four") == 4
    assert count_sentences("No terminal punctuation here") == 1
    assert count_sentences("") == 0


def test_gopher_quality_keeps_prose_and_names_the_failed_rule():
    cfg = GopherQualityConfig()
    assert gopher_quality(PROSE, cfg).keep
    assert gopher_quality("Too short to be a document.", cfg).reason == "gopher_short_doc"
    no_stop = " ".join(["banana apple cherry grape melon"] * 20)
    assert gopher_quality(no_stop, cfg).reason == "gopher_enough_stop_words"
    hashes = PROSE + " " + " ".join(["#tag"] * 40)
    assert gopher_quality(hashes, cfg).reason == "gopher_too_many_hashes"
    bullets = "\n".join(f"- item number {i} of the list with the words to and of" for i in range(60))
    assert gopher_quality(bullets, cfg).reason == "gopher_too_many_bullets"
    numbers = PROSE + " " + " ".join(str(1000 + i) for i in range(150))
    assert gopher_quality(numbers, cfg).reason == "gopher_below_alpha_threshold"
    assert gopher_quality(PROSE, cfg).scores["gopher_words"] > 50


def test_gopher_repetition_catches_repeated_lines_and_ngrams():
    cfg = GopherRepetitionConfig()
    assert gopher_repetition(PROSE, cfg).keep
    lines = "\n".join(["Buy cheap watches online today."] * 10 + [PROSE])
    assert gopher_repetition(lines, cfg).reason == "dup_line_frac"
    paras = "\n\n".join([PROSE] * 3)
    assert gopher_repetition(paras, cfg).reason == "dup_para_frac"
    spam = PROSE + " " + " ".join(["best deals for you"] * 40)
    assert gopher_repetition(spam, cfg).reason.startswith(("top_", "duplicated_"))


def test_gopher_repetition_agrees_with_datatrove_on_ngram_rules():
    from datatrove.data import Document
    from datatrove.pipeline.filters import GopherRepetitionFilter

    dt = GopherRepetitionFilter()
    words = PROSE.split()
    docs = [PROSE, PROSE + " " + " ".join(words[:12] * 6), " ".join(words * 2), PROSE + " " + " ".join(words[:3] * 30)]
    for text in docs:
        ours = gopher_repetition(text, GopherRepetitionConfig())
        theirs = dt.filter(Document(text=text, id="x"))
        theirs_keep = theirs is True or (isinstance(theirs, tuple) and theirs[0])
        assert ours.keep == theirs_keep, (text[:60], ours, theirs)


def test_c4_removes_bad_lines_and_documents():
    cfg = C4Config()
    text = PROSE + "\nHome\nPlease enable javascript to see the menu.\nWe use cookies. Read our privacy policy."
    d = c4_quality(text, cfg)
    assert d.keep and d.text == PROSE and d.scores["c4_lines_removed"] == 3
    assert c4_quality(PROSE + "\nLorem ipsum dolor sit amet, consectetur.", cfg).reason == "lorem_ipsum"
    # as datatrove: a bracket only drops the page on a line that survived the line rules
    assert c4_quality(PROSE + "\nvar x = {a: 1, b: 2, c: 3};", cfg).keep
    assert c4_quality(PROSE + "\nThe settings are {a: 1, b: 2} for everyone.", cfg).reason == "curly_bracket"
    assert c4_quality("Only one sentence here is fine.", cfg).reason == "too_few_sentences"


def test_fineweb_rules():
    cfg = FineWebConfig()
    assert fineweb_quality(PROSE, cfg).keep
    assert fineweb_quality("\n".join(["menu item"] * 3 + ["another item", "last"]), cfg).reason == "line_punct_ratio"
    short = "\n".join([f"Short line {i}." for i in range(20)])
    assert fineweb_quality(short, cfg).reason == "short_line_ratio"
    dup = PROSE + "\n" + "\n".join(["This exact line repeats itself across the page."] * 3)
    assert fineweb_quality(dup, cfg).reason == "char_dup_ratio"


def test_fineweb_stop_chars_option():
    assert FineWebConfig().stop_chars is None  # datatrove's TERMINAL_PUNCTUATION
    lines = "\n".join(f"Line number {i} of a page that ends in a colon and runs long enough:" for i in range(10))
    assert fineweb_quality(lines, FineWebConfig()).reason == "line_punct_ratio"
    assert fineweb_quality(lines, FineWebConfig(stop_chars=[":"])).keep
    assert fineweb_quality(PROSE, FineWebConfig(stop_chars=["!"])).reason == "line_punct_ratio"


def test_fineweb_stop_chars_agree_with_datatrove():
    from datatrove.data import Document
    from datatrove.pipeline.filters import FineWebQualityFilter

    docs = [PROSE, "\n".join(f"Item {i} of a list that ends without a stop char;" for i in range(10)),
            "\n".join(f"Item {i} of a list that ends with a colon, a long line:" for i in range(10))]
    for stop in ([":"], [";", "."], ["!"]):
        theirs = FineWebQualityFilter(stop_chars=tuple(stop))
        for text in docs:
            r = theirs.filter(Document(text=text, id="x"))
            assert fineweb_quality(text, FineWebConfig(stop_chars=stop)).keep == (r is True or r[0]), (stop, text)


def test_pii_masks_and_counts_and_removes_bulk():
    cfg = PIIConfig()
    text = "Write to jane.doe@example.com or call +1 555-123-4567; the host 93.184.216.34 serves files."
    d = pii(text, cfg)
    assert d.keep
    assert d.scores == {"pii_emails": 1, "pii_phones": 1, "pii_ips": 1}
    assert d.text == "Write to |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER|||; the host |||IP_ADDRESS||| serves files."
    assert pii("Version 1.2.3.4.5 costs 1999 dollars in 2024.", cfg).scores == {"pii_emails": 0, "pii_phones": 0,
                                                                                 "pii_ips": 0}
    assert pii("Address 999.1.1.1 is not an IP.", cfg).scores["pii_ips"] == 0
    dump = " ".join(f"user{i}@example.org" for i in range(8))
    assert pii(dump, cfg).reason == "too_many_pii"


def test_toxicity_word_list(tmp_path):
    cfg = ToxicityConfig()
    assert toxicity(PROSE, cfg).keep
    rant = "You stupid fucking idiot, this shit is bullshit and you are an asshole. " * 3
    d = toxicity(rant, cfg)
    assert not d.keep and d.reason == "toxic_words" and d.scores["toxic_words"] >= 9
    custom = tmp_path / "words.txt"
    custom.write_text("# mine\nriver\nbakery\n")
    assert toxicity(PROSE * 3, ToxicityConfig(wordlist_path=str(custom), min_word_hits=2)).reason == "toxic_words"
    with pytest.raises(FileNotFoundError):
        toxicity(PROSE, ToxicityConfig(wordlist_path=str(tmp_path / "missing.txt")))


def test_langid_with_real_lid176_model():
    cfg = LangIdConfig()
    model = load_fasttext(str(find_lid_model()))
    en = langid(PROSE, cfg, model)
    assert en.keep and en.scores["language"] == "en" and en.scores["language_score"] > 0.9
    fr = langid("La rivière qui traverse la vieille ville servait autrefois de route commerciale pour le pays.",
                cfg, model)
    assert not fr.keep and fr.reason == "language" and fr.scores["language"] == "fr"
    multi = LangIdConfig(languages=None)
    assert langid("Der Fluss fließt durch die Altstadt und war früher eine Handelsstraße.", multi, model).keep
