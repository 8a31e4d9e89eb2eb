"""Slicing: the first chapter is dropped, paragraphs are units, word budgets hold, at most N works per author
per slice, and every excluded work says why."""
import pytest

from filters.dating.slicing import (SliceWork, build_slices, cap_works_per_author, chapter_starts,
                                    drop_first_chapter, paragraph_units)

PARA = ("The rain came down over the hills all that afternoon, and the children sat by the window watching the "
        "water run along the lane while their mother sewed and the old dog slept in front of the fire.")


def book(n_chapters=3, paras=4):
    parts = ["THE BOOK\n\nCONTENTS\n\nCHAPTER I. The Rain\nCHAPTER II. The Lane\nCHAPTER III. The Fire"]
    for i, roman in enumerate(["I", "II", "III", "IV"][:n_chapters]):
        parts.append(f"CHAPTER {roman}.\n\n" + "\n\n".join(f"Chapter {i + 1} paragraph {j}. {PARA}"
                                                           for j in range(paras)))
    return "\n\n\n".join(parts)


def test_first_chapter_and_contents_are_dropped():
    text = book()
    assert len(chapter_starts(text)) == 3  # the contents lines are not chapters
    rest, how = drop_first_chapter(text)
    assert how == "dropped front matter and first chapter"
    assert "Chapter 1 paragraph" not in rest and "CONTENTS" not in rest
    assert rest.startswith("CHAPTER II.")


def test_without_chapters_a_head_fraction_is_dropped():
    text = "\n\n".join(f"Paragraph {i}. {PARA}" for i in range(20))
    rest, how = drop_first_chapter(text, fallback_fraction=0.25)
    assert how.startswith("no chapters found") and "Paragraph 0." not in rest and "Paragraph 19." in rest


def test_paragraph_units_join_lines_and_drop_headings():
    text = "CHAPTER II.\n\n[Illustration: a dog]\n\nA short one.\n\nThe rain came down\nover the hills.\n\nTHE END OF PART ONE AT LAST NOW"
    assert paragraph_units(text, min_words=3) == ["A short one.", "The rain came down over the hills."]


def works(n, author="Doe, Jane", slice_="1850_1880", paras=10, words_per_para=10, prefix="w"):
    return [SliceWork(f"{prefix}{i}", author, slice_, 0.5 + i / 100,
                      [" ".join(["word"] * words_per_para)] * paras) for i in range(n)]


def test_budgets_are_never_exceeded_and_a_small_corpus_is_shared_in_proportion():
    budgets = {"train": 1000, "dev": 100, "test": 500}
    big = build_slices(works(30), budgets=budgets, max_works_per_author=30)  # 3000 words for 1600 of budget
    for split, b in budgets.items():
        assert big.words[("1850_1880", split)] == b
    assert big.units_over_budget["1850_1880"] == 300 - 160
    small = build_slices(works(3), budgets=budgets)  # 300 words for 1600 of budget: all used, 10:1:5
    w = {s: small.words[("1850_1880", s)] for s in budgets}
    assert sum(w.values()) == 300 and w["train"] > w["test"] > w["dev"] > 0
    assert small.units_over_budget["1850_1880"] == 0


def test_per_author_cap_keeps_the_most_confident_works():
    ws = works(5) + works(2, author="Roe, John", prefix="r")
    kept, excluded = cap_works_per_author(ws, max_per_author=3)
    assert sorted(w.id for w in kept) == ["r0", "r1", "w2", "w3", "w4"]
    assert set(excluded) == {"w0", "w1"} and "author cap" in excluded["w0"]
    result = build_slices(ws, budgets={"train": 10_000, "dev": 1000, "test": 5000}, max_works_per_author=3)
    assert set(result.works_used["1850_1880"]) == {"r0", "r1", "w2", "w3", "w4"}
    assert set(result.excluded) == {"w0", "w1"}


def test_cap_is_per_slice_and_unknown_authors_are_not_pooled():
    ws = works(3, slice_="1850_1880") + works(3, slice_="1880_1910", prefix="x") + works(3, author="", prefix="u")
    kept, excluded = cap_works_per_author(ws, max_per_author=2)
    assert len(kept) == 2 + 2 + 3 and len(excluded) == 2


def test_undated_and_empty_works_are_excluded_with_reasons():
    ws = [SliceWork("a", "x", None, 0.0, ["some words here"]), SliceWork("b", "x", "1850_1880", 0.9, [])]
    result = build_slices(ws)
    assert result.excluded == {"a": "no slice: undated or dated outside every slice",
                               "b": "no paragraphs left after dropping the first chapter"}


def test_work_level_split_keeps_a_work_together_and_is_deterministic():
    ws = works(12)
    budgets = {"train": 800, "dev": 100, "test": 400}
    a = build_slices(ws, budgets=budgets, split_by="work", seed=3)
    b = build_slices(ws, budgets=budgets, split_by="work", seed=3)
    owners = {}
    for (sl, split), units in a.rows.items():
        for u in units:
            assert owners.setdefault(u.work_id, split) == split
    assert {k: [u.text for u in v] for k, v in a.rows.items()} == {k: [u.text for u in v] for k, v in b.rows.items()}
    stats = a.stats(budgets)["slices"]["1850_1880"]
    assert stats["splits"]["train"]["words"] <= 800 and stats["works"] == len(owners)
    with pytest.raises(ValueError, match="split_by"):
        build_slices(ws, split_by="chapter")
