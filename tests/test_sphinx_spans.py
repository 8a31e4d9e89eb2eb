"""Span protection for sphinx: hard cases of finding spans, masking and restoring (byte-identical, by hash)."""
from __future__ import annotations

import json

import pytest

from filters.protected_spans import Protected, Span, code_math_share, find_spans, mask, prose, restore, sha256


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in find_spans(text)]


def roundtrip(text: str) -> tuple[str, list[Protected]]:
    masked, spans = mask(text, find_spans(text))
    r = restore(masked, spans)
    assert r.text == text and r.intact and set(r.status.values()) <= {"restored"}
    return masked, spans


def test_code_inside_a_markdown_list_is_one_block_with_its_indentation():
    text = ("1. Open a terminal.\n2. Run:\n   ```bash\n   python3 -m venv .venv\n   echo {x} $HOME\n   ```\n"
            "3. Activate it with `source .venv/bin/activate` and `pip install <package>`.")
    masked, spans = roundtrip(text)
    assert [s.kind for s in spans] == ["code_block", "inline_code", "inline_code"]
    assert spans[0].text.startswith("   ```bash") and spans[0].text.endswith("   ```")
    assert masked == "1. Open a terminal.\n2. Run:\n⟦1⟧\n3. Activate it with ⟦2⟧ and ⟦3⟧."
    # an unclosed fence runs to the end of the text
    assert kinds("See:\n```\nprint(1)\n")[0] == ("code_block", "```\nprint(1)\n")


def test_latex_with_braces_is_one_span_and_dollars_of_money_are_not_math():
    assert kinds(r"Use $\frac{a}{b} + x^{2}$ here.") == [("math", r"$\frac{a}{b} + x^{2}$")]
    assert kinds(r"\begin{align} x &= \{1, 2\} \\ y &= {n} \end{align} done") == [
        ("math_block", r"\begin{align} x &= \{1, 2\} \\ y &= {n} \end{align}")]
    assert kinds(r"Display $$\sum_{i=1}^{n} i$$ and \(e^{i\pi}\) and \[ \int_0^1 f \].") == [
        ("math_block", r"$$\sum_{i=1}^{n} i$$"), ("math", r"\(e^{i\pi}\)"), ("math_block", r"\[ \int_0^1 f \]")]
    # pandoc's rule: "$5 and $10" is two amounts, not a formula
    assert kinds("It costs $5 and $10.") == [("number_unit", "$5"), ("number_unit", "$10")]
    roundtrip(r"Let $x_{1}$ be {name}'s value at 3.5 kg.")


def test_urls_inside_parentheses_and_trailing_punctuation():
    assert kinds("The library (see https://example.org/library_(main)) opens.") == [
        ("url", "https://example.org/library_(main)")]
    assert kinds("Docs (https://a.org/x). Also www.example.com/page, then http://b.io/q?a=1&b=2!") == [
        ("url", "https://a.org/x"), ("url", "www.example.com/page"), ("url", "http://b.io/q?a=1&b=2")]
    # a URL inside a tag is part of the tag; an e-mail in angle brackets is an e-mail
    assert kinds('<a href="https://x.org/a">link</a> or <bob@example.com>') == [
        ("tag", '<a href="https://x.org/a">'), ("tag", "</a>"), ("email", "bob@example.com")]


def test_placeholders_json_keys_tags_paths_and_units():
    assert [k for k, _ in kinds("Hi {name}, {{user}}, {0}, {:>8}, %s, %(count)d, %1$s, ${HOME}.")] == ["placeholder"] * 8
    assert kinds('{"name": "Anna", "age": 34}') == [("json_key", '"name"'), ("json_key", '"age"')]
    assert kinds('{\n  "city": "Porto"\n}') == [("json_key", '"city"')]
    assert kinds('He said "no" and left.') == []  # a quotation in prose is not a key
    assert kinds("<p>This is <b>bold</b><br/></p><!-- note -->") == [
        ("tag", "<p>"), ("tag", "<b>"), ("tag", "</b>"), ("tag", "<br/>"), ("tag", "</p>"), ("tag", "<!-- note -->")]
    assert kinds(r"Edit /etc/hosts, C:\Users\me\a.txt, ~/.bashrc, ./run.sh or src/main.py.") == [
        ("path", "/etc/hosts"), ("path", r"C:\Users\me\a.txt"), ("path", "~/.bashrc"), ("path", "./run.sh"),
        ("path", "src/main.py")]
    assert kinds("Use and/or, 1/2 a cup, 24 hours, 3 sizes.") == []
    assert kinds("Take 3.5 kg at 25 °C for 10 min, 50% off, 30 km/h, 2 GB, €20.") == [
        ("number_unit", t) for t in ("3.5 kg", "25 °C", "10 min", "50%", "30 km/h", "2 GB", "€20")]
    assert kinds("50% of the text") == [("number_unit", "50%")]  # not a %o placeholder


def test_restore_reports_each_span_and_checks_by_hash():
    text = "Open https://x.org, then run `make`, write to a@b.com."
    masked, spans = mask(text, find_spans(text))
    assert masked == "Open ⟦1⟧, then run ⟦2⟧, write to ⟦3⟧."
    assert [p.sha256 for p in spans] == [sha256(s) for s in ("https://x.org", "`make`", "a@b.com")]
    # reordered and padded markers are fine
    r = restore("Führe ⟦ 2 ⟧ aus, öffne ⟦1⟧ und schreibe an ⟦3⟧.", spans)
    assert r.intact and r.text == "Führe `make` aus, öffne https://x.org und schreibe an a@b.com."
    # the translator copied a span instead of its marker: byte-identical, so intact
    r = restore("Öffne https://x.org, führe ⟦2⟧ aus, schreibe an ⟦3⟧.", spans)
    assert r.intact and r.status == {1: "verbatim", 2: "restored", 3: "restored"}
    # a changed copy, a lost marker, a duplicated one and one the source never had: each named
    r = restore("Öffne https://x.org/, führe ⟦2⟧ ⟦2⟧ aus ⟦7⟧.", spans)
    assert not r.intact and r.status == {1: "missing", 2: "duplicated", 3: "missing"} and r.unknown == ["⟦7⟧"]
    assert prose("Öffne ⟦1⟧, führe ⟦2⟧ aus.") == "Öffne , führe aus."


def test_markers_in_the_source_are_refused_and_extra_spans_win():
    with pytest.raises(ValueError, match="marker"):
        mask("already ⟦1⟧ here", [])
    text = "Translate 'the {x} cat' please"
    spans = find_spans(text, extra=[Span(10, 23, "payload", text[10:23])])
    assert [(s.kind, s.text) for s in spans] == [("payload", "'the {x} cat'")]


def test_code_math_share():
    assert code_math_share("Give three tips for staying focused while studying.") == 0.0
    assert code_math_share("```python\ndef f(x):\n    return x\n```") == 1.0
    assert code_math_share("2x + 3 = 11\n2x = 8\nx = 4") == 1.0
    assert 0.2 < code_math_share("Explain the command.\n\n`grep -rn TODO ./src`") < 0.6


def test_every_shared_seed_task_round_trips(tmp_path):
    from tests.conftest import shared_path

    path = shared_path("data", "instruct", "self_instruct_seed_tasks.jsonl")
    n_spans = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        for text in (task["instruction"], task["instances"][0]["input"], task["instances"][0]["output"]):
            n_spans += len(roundtrip(text)[1])
    assert n_spans > 20  # the seeds do have code, numbers with units, URLs ...
