"""Mix rules: the grammar against an independent three-valued reference on random rows, and one-line errors."""
import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from corpora.mix_rules import RuleError, parse_rule

LANGS = ["de", "fr", "en", "es"]


def _table(n=400, seed=1):
    rng = random.Random(seed)
    return pa.table({
        "quality_score": [None if rng.random() < 0.1 else round(rng.random(), 2) for _ in range(n)],
        "language": [None if rng.random() < 0.1 else rng.choice(LANGS) for _ in range(n)],
        "decided_by": [rng.choice(["rouge", "vote", "judge"]) for _ in range(n)],
        "words": [rng.randint(0, 9) for _ in range(n)],
        "flag": [rng.random() < 0.5 for _ in range(n)],
    })


# a random rule as text and as a reference function (None = unknown, SQL's three-valued logic)
def _cmp(a, op, b):
    if a is None:
        return None
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _random_test(rng):
    kind = rng.randrange(5)
    op = rng.choice(["==", "!=", "<", "<=", ">", ">="])
    if kind == 0:
        v = round(rng.random(), 2)
        return f"quality_score {op} {v}", lambda r: _cmp(r["quality_score"], op, v)
    if kind == 1:
        vals = rng.sample(LANGS, rng.randint(1, 3))
        neg = rng.random() < 0.5
        text = f"language {'not in' if neg else 'in'} [{', '.join(vals)}]"
        return text, lambda r: None if r["language"] is None else ((r["language"] in vals) != neg)
    if kind == 2:
        v = rng.choice(["rouge", "vote"])
        q = rng.choice(["{}", "'{}'", '"{}"'])
        return f"decided_by {op if op in ('==', '!=') else '!='} {q.format(v)}", \
            lambda r: _cmp(r["decided_by"], op if op in ("==", "!=") else "!=", v)
    if kind == 3:
        v = rng.randint(0, 9)
        return f"words {op} {v}", lambda r: _cmp(r["words"], op, v)
    neg = rng.random() < 0.5
    return f"language is {'not ' if neg else ''}null", lambda r: (r["language"] is None) != neg


def _and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _random_rule(rng, depth=0):
    if depth > 2 or rng.random() < 0.35:
        return _random_test(rng)
    k = rng.randrange(3)
    if k == 0:
        t, f = _random_rule(rng, depth + 1)
        return f"not ({t})", lambda r: None if f(r) is None else not f(r)
    (ta, fa), (tb, fb) = _random_rule(rng, depth + 1), _random_rule(rng, depth + 1)
    if k == 1:
        return f"({ta}) and ({tb})", lambda r: _and(fa(r), fb(r))
    return f"({ta}) OR ({tb})", lambda r: _or(fa(r), fb(r))


def test_random_rules_match_a_three_valued_reference():
    t = _table()
    rows = t.to_pylist()
    types = {f.name: f.type for f in t.schema}
    rng = random.Random(7)
    for _ in range(300):
        text, ref = _random_rule(rng)
        rule = parse_rule(text)
        rule.check(t.schema)
        got = ds.dataset(t).to_table(columns={"m": rule.expression(types=types)}).column("m").to_pylist()
        assert got == [ref(r) for r in rows], text


def test_precedence_not_binds_tighter_than_and_than_or():
    t = _table()
    types = {f.name: f.type for f in t.schema}

    def ev(text):
        return ds.dataset(t).to_table(columns={"m": parse_rule(text).expression(types=types)}).column("m")

    a = ev("words > 3 or words < 2 and flag == true")
    b = ev("words > 3 or (words < 2 and flag == true)")
    c = ev("(words > 3 or words < 2) and flag == true")
    assert a.equals(b) and not a.equals(c)
    assert ev("not words > 3 and flag == true").equals(ev("(not words > 3) and flag == true"))


def test_columns_and_literals():
    r = parse_rule("`odd name` >= -1.5e0 and metadata.kind in ['a b', \"c\", d] and x = 3")
    assert r.columns == ["odd name", "metadata.kind", "x"]
    assert [t.value for t in r.tests] == [-1.5, ["a b", "c", "d"], 3]
    assert parse_rule("flag == TRUE").tests[0].value is True


@pytest.mark.parametrize("text, message", [
    ("qualty_score >= 0.5", "unknown column 'qualty_score' at position 0 (did you mean 'quality_score'?)"),
    ("zzz == 1", "unknown column 'zzz' at position 0 (columns: quality_score, language"),
    ("quality_score >= 'high'", "column 'quality_score' is double, compared with 'high' at position 17"),
    ("language in [de, 5]", "column 'language' is string, compared with 5 at position 12"),
    ("flag == 1", "column 'flag' is bool, compared with 1"),
    ("language in [de, fr", "expected ']', got the end at position 19"),
    ("(words > 1", "expected ')', got the end at position 10"),
    ("words >", "unexpected end of rule at position 7"),
    ("words > 1 xor words < 2", "unexpected 'xor' at position 10"),
    ("words ~ 1", "unexpected character '~' at position 6"),
    ("words == null", "compare with null using 'is null'"),
    ("words 3", "expected an operator (== != < <= > >= in, not in, is null) after 'words', got '3' at position 6"),
    ("__import__('os').system('true')", "unexpected character '.' at position 16"),
    ("", "empty rule"),
])
def test_bad_rules_are_one_line_errors_with_position(text, message):
    t = _table(5)
    with pytest.raises(RuleError) as e:
        parse_rule(text).check(t.schema)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_in_list_types_follow_the_column():
    t = pa.table({"x": pa.array([1.0, 2.0, None]), "d": pa.array(["a", "b", "a"]).dictionary_encode()})
    types = {f.name: f.type for f in t.schema}
    m = ds.dataset(t).to_table(columns={"m": parse_rule("x in [1, 3]").expression(types=types),
                                        "n": parse_rule("d in [a]").expression(types=types)})
    assert m.column("m").to_pylist() == [True, False, None]
    assert pc.fill_null(m.column("n"), False).to_pylist() == [True, False, True]
