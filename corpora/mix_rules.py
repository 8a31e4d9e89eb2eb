"""Include / exclude rules of a mix source: a small grammar parsed into a pyarrow compute expression (no eval).

    rule       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" rule ")" | test
    test       := column op literal | column ["not"] "in" "[" literal ("," literal)* "]" | column "is" ["not"] "null"
    op         := == | = | != | < | <= | > | >=
    column     := name (dots allowed: `metadata.kind`) | `any name in backticks`
    literal    := number | 'string' | "string" | true | false | bare word (a string: `language in [de, fr]`)

The right side of a test is always a literal (never a column). A value that is null never passes a test (SQL's
rule): `quality_score >= 0.5` and `not quality_score >= 0.5` are both false for a row without a score; `is null`
tests for it. `parse_rule` gives a `Rule` (its text, the expression, the columns it names, its literals per
column); `Rule.check(schema)` names an unknown column (with a did-you-mean) or a literal of the wrong type.
Errors are one line: `rule 'quality >= x': unknown column 'quality' at position 0 (did you mean 'quality_score'?)`.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


class RuleError(ValueError):
    """A rule that cannot be parsed or does not fit the data: one line with the rule, the position and why."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<op>==|!=|<=|>=|=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]+`)
  | (?P<word>[A-Za-z_][\w.\-]*)
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}


@dataclass(frozen=True)
class Token:
    kind: str  # op, punct, num, str, name (a word or a backticked name), kw
    text: str
    pos: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise RuleError(f"rule {text!r}: unexpected character {text[pos]!r} at position {pos}")
        kind, raw = m.lastgroup, m.group()
        if kind == "num":
            out.append(Token("num", raw, pos, float(raw) if any(c in raw for c in ".eE") else int(raw)))
        elif kind == "str":
            out.append(Token("str", raw, pos, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "quoted":
            out.append(Token("name", raw, pos, raw[1:-1]))
        elif kind == "word":
            low = raw.lower()
            out.append(Token("kw", low, pos) if low in KEYWORDS else Token("name", raw, pos, raw))
        elif kind != "ws":
            out.append(Token(kind, raw, pos))
        pos = m.end()
    return out


@dataclass(frozen=True)
class Test:
    column: str
    op: str  # == != < <= > >= in not_in is_null not_null
    value: Any
    pos: int
    value_pos: int


@dataclass
class Rule:
    text: str
    tree: Any  # ("and"|"or", a, b) | ("not", a) | Test
    tests: list[Test] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(t.column for t in self.tests))

    def expression(self, resolve=None, types: dict[str, pa.DataType] | None = None) -> pc.Expression:
        """The pyarrow expression; `resolve(column) -> pc.Expression` maps a column name to a field reference
        (default: a top-level column of that exact name); `types` (column -> type) types the `in` lists."""
        return _compile(self.tree, resolve or pc.field, types or {})

    def check(self, schema: pa.Schema, resolve_type=None) -> None:
        """Raise RuleError for an unknown column (did-you-mean, the known columns) or a literal whose type does not
        fit the column's. `resolve_type(column) -> pa.DataType | None` finds nested / derived columns."""
        for t in self.tests:
            typ = schema.field(t.column).type if t.column in schema.names else (resolve_type(t.column)
                                                                                 if resolve_type else None)
            if typ is None:
                close = difflib.get_close_matches(t.column, schema.names, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (columns: {', '.join(schema.names)})"
                raise RuleError(f"rule {self.text!r}: unknown column '{t.column}' at position {t.pos}{hint}")
            _check_type(self.text, t, typ)


def _check_type(text: str, t: Test, typ: pa.DataType) -> None:
    if t.op in ("is_null", "not_null"):
        return
    values = t.value if isinstance(t.value, list) else [t.value]
    for v in values:
        if v is None:
            continue
        if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_dictionary(typ):
            ok, want = isinstance(v, str), "a string"
        elif pa.types.is_boolean(typ):
            ok, want = isinstance(v, bool), "true or false"
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            ok, want = isinstance(v, (int, float)) and not isinstance(v, bool), "a number"
        else:
            ok, want = not isinstance(v, (list, dict)), str(typ)
        if not ok:
            raise RuleError(f"rule {text!r}: column '{t.column}' is {typ}, compared with {v!r} at position "
                            f"{t.value_pos} (expected {want})")


def _compile(node, resolve, types) -> pc.Expression:
    if isinstance(node, Test):
        f = resolve(node.column)
        if node.op == "is_null":
            return f.is_null()
        if node.op == "not_null":
            return f.is_valid()
        if node.op in ("in", "not_in"):
            # isin says false (not null) for a null value: make it null, so that a null never passes a test,
            # negated or not (SQL's rule, as for the comparisons)
            typ = types.get(node.column)
            values = pa.array(node.value, type=typ.value_type if pa.types.is_dictionary(typ) else typ) \
                if typ is not None else node.value
            e = pc.if_else(f.is_valid(), f.isin(values), pa.scalar(None, pa.bool_()))
            return e if node.op == "in" else ~e
        return {"==": f == node.value, "!=": f != node.value, "<": f < node.value, "<=": f <= node.value,
                ">": f > node.value, ">=": f >= node.value}[node.op]
    if node[0] == "not":
        return ~_compile(node[1], resolve, types)
    a, b = _compile(node[1], resolve, types), _compile(node[2], resolve, types)
    return a & b if node[0] == "and" else a | b


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.tests: list[Test] = []

    def fail(self, msg: str, pos: int | None = None) -> RuleError:
        if pos is None:
            pos = self.toks[self.i].pos if self.i < len(self.toks) else len(self.text)
        return RuleError(f"rule {self.text!r}: {msg} at position {pos}")

    def peek(self) -> Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end of rule")
        self.i += 1
        return tok

    def is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "kw" and tok.text == word

    def expect(self, kind: str, text: str | None = None) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != kind or (text is not None and tok.text != text):
            got = f"'{tok.text}'" if tok else "the end"
            raise self.fail(f"expected {repr(text) if text else kind}, got {got}")
        return self.take()

    def parse(self) -> Rule:
        if not self.toks:
            raise RuleError(f"rule {self.text!r}: empty rule")
        tree = self.parse_or()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.peek().text}'")
        return Rule(self.text, tree, self.tests)

    def parse_or(self):
        node = self.parse_and()
        while self.is_kw("or"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while self.is_kw("and"):
            self.take()
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if self.is_kw("not"):
            self.take()
            return ("not", self.parse_not())
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == "(":
            self.take()
            node = self.parse_or()
            self.expect("punct", ")")
            return node
        return self.parse_test()

    def literal(self) -> tuple[Any, int]:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return tok.value, tok.pos
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true", tok.pos
        if tok.kind == "name":  # a bare word is a string: language in [de, fr], decided_by != rouge
            return tok.value, tok.pos
        raise self.fail(f"expected a value, got '{tok.text}'", tok.pos)

    def parse_test(self):
        tok = self.take()
        if tok.kind != "name":
            raise self.fail(f"expected a column name, got '{tok.text}'", tok.pos)
        col = tok.value
        nxt = self.peek()
        if nxt is None:
            raise self.fail(f"expected an operator after '{col}'")
        if nxt.kind == "op":
            self.take()
            if self.is_kw("null"):
                raise self.fail("compare with null using 'is null' / 'is not null'")
            value, vpos = self.literal()
            test = Test(col, "==" if nxt.text == "=" else nxt.text, value, tok.pos, vpos)
        elif nxt.kind == "kw" and nxt.text in ("in", "not"):
            self.take()
            op = "in"
            if nxt.text == "not":
                self.expect("kw", "in")
                op = "not_in"
            start = self.expect("punct", "[")
            values = [self.literal()[0]]
            while self.peek() is not None and self.peek().text == ",":
                self.take()
                values.append(self.literal()[0])
            self.expect("punct", "]")
            test = Test(col, op, values, tok.pos, start.pos)
        elif nxt.kind == "kw" and nxt.text == "is":
            self.take()
            op = "is_null"
            if self.is_kw("not"):
                self.take()
                op = "not_null"
            self.expect("kw", "null")
            test = Test(col, op, None, tok.pos, nxt.pos)
        else:
            raise self.fail(f"expected an operator (== != < <= > >= in, not in, is null) after '{col}', "
                            f"got '{nxt.text}'", nxt.pos)
        self.tests.append(test)
        return test


def parse_rule(text: str) -> Rule:
    if not isinstance(text, str):
        raise RuleError(f"rule {text!r}: expected a string")
    return _Parser(text).parse()
