"""Ensemble-Instruct's completion parsers (pure): the instructions round's numbered list and the reference's
filters (`parse_instructions`, `instruction_reason`), and the instances round's blocks, ours (`parse_instance`) or
the reference's rule for rule (`parse_instances_reference`), as instance rows (`instance_rows_of`).
"""
from __future__ import annotations

import re
import string

from generators.ensemble_config import EOS, InstructionsConfig


def instruction_reason(ins: str, cfg: InstructionsConfig) -> str | None:
    """Why a parsed instruction is dropped (None: kept). The reference's filters."""
    n = len(ins.split())
    if n == 0:
        return "empty"
    if n <= cfg.min_words:
        return "too_short"
    if n > cfg.max_words:
        return "too_long"
    if any(re.search(rf"\b({re.escape(w)})\b", ins, re.IGNORECASE) for w in cfg.blacklist):
        return "blacklisted_word"
    if ins.startswith("Write a program"):
        return "program"
    if ins[0] in string.punctuation:
        return "punctuation_start"
    if not ins[0].isascii():
        return "non_ascii_start"
    return None


def parse_instructions(response: str, cfg: InstructionsConfig) -> list[tuple[str, str | None]]:
    """(instruction, drop reason or None) per piece of a completion; pieces empty after cleaning are skipped."""
    out = []
    for piece in re.split(r"\n\d+\s?\. ", response or ""):
        ins = re.sub(r"\s+", " ", piece.split(EOS, 1)[0]).strip()
        if ins:
            out.append((ins, instruction_reason(ins, cfg)))
    return out


_LABEL = re.compile(r"^\s*(instruction|input|output)\s*:\s?", re.IGNORECASE)


def parse_instance(text: str, kind: str) -> tuple[str | None, str | None, str | None]:
    """(input, output, failure reason) from the first block of an instance completion: it ends at `|EoS|`, a
    blank line, or a line starting a new `instruction:`. A: `input:` (may span lines) then `output:`; B: `output:`
    first. Outputs may span lines."""
    block = (text or "").split(EOS, 1)[0].strip("\n").split("\n\n", 1)[0]
    lines = block.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if re.match(r"^\s*instruction\s*:", line, re.IGNORECASE):
            lines = lines[:i]
            break
    labels = [(_LABEL.match(line).group(1).lower() if _LABEL.match(line) else None) for line in lines]
    if not lines or labels[0] is None:
        return None, None, "no_label"
    if "output" not in labels:
        return None, None, "no_output"
    o = labels.index("output")
    output = "\n".join([_LABEL.sub("", lines[o], count=1)] + lines[o + 1:]).strip()
    if kind == "A":
        if labels[0] != "input":
            return None, None, "no_input"
        inp = "\n".join([_LABEL.sub("", lines[0], count=1)] + lines[1:o]).strip()
        if not inp:
            return None, None, "empty_input"
    else:
        if labels[0] != "output":
            return None, None, "unexpected_input" if labels[0] == "input" else "no_output"
        inp = ""
    if not output:
        return None, None, "empty_output"
    return inp, output, None


def parse_instances_reference(raw: str) -> list[tuple[str | None, str, str]]:
    """The reference's instance parsing (IBM/ensemble-instruct, ensemble_instruct/sample_instances.py, lines 24-96),
    rule for rule: blocks are split on blank lines (and on `^`, which the reference uses as its separator); the
    first block gives (input = its first line, output = its second line) when the first line contains `input:`, or
    (input "", output = its first line) when it contains `output:` only; a later block whose first line contains
    `instruction:` (and more than 5 words) gives an instance of its own (its instruction, then its input/output
    lines). Labels are case-sensitive substrings, removed wherever they occur, and so is `|EoS|`; an output needs a
    word. The completion's type is not consulted (the reference ran the parser on each type's file alone).
    Returns [(instruction or None for the prompt's own, input, output)]. An empty completion gives [] (the
    reference raised IndexError on one)."""
    def clean(line: str, label: str) -> str:
        return line.replace(label, "").strip().replace(EOS, "").strip()

    out: list[tuple[str | None, str, str]] = []
    for idx, block in enumerate((raw or "").strip().replace("\n\n", "^").split("^")):
        lines = block.splitlines()
        if not lines:
            continue
        if "input:" in lines[0]:
            if idx == 0 and len(lines) > 1:
                inp, outp = lines[0].strip(), lines[1].strip()
                if "input:" in inp and "output:" in outp:
                    inp, outp = clean(inp, "input:"), clean(outp, "output:")
                    if outp.split():
                        out.append((None, inp, outp))
            elif idx > 0 and len(lines) > 2:
                ins, inp, outp = lines[0].strip(), lines[1].strip(), lines[2].strip()
                if "instruction:" in ins and "input:" in inp and "output:" in outp and len(ins.split()) > 5:
                    ins, inp, outp = clean(ins, "instruction:"), clean(inp, "input:"), clean(outp, "output:")
                    if outp.split():
                        out.append((ins, inp, outp))
        elif "output:" in lines[0]:
            if idx == 0:
                outp = lines[0].strip()
                if "output:" in outp:
                    outp = clean(outp, "output:")
                    if outp.split():
                        out.append((None, "", outp))
            elif len(lines) > 1:
                ins, outp = lines[0].strip(), lines[1].strip()
                if "instruction:" in ins and "output:" in outp and len(ins.split()) > 5:
                    ins, outp = clean(ins, "instruction:"), clean(outp, "output:")
                    if outp.split():
                        out.append((ins, "", outp))
    return out


def instance_rows_of(rec: dict, parse: str) -> list[tuple[dict, str | None]]:
    """(instance row, parse failure or None) per instance of a completion: one (ours), or one per instance the
    reference's rules find (its first keeps the record's id; none: one failed row, "no_instance")."""
    if parse == "reference":
        parsed = [({**rec, "id": rec["id"] if j == 0 else f"{rec['id']}-{j}",
                    "instruction": ins if ins is not None else rec["instruction"]}, inp, output, None)
                  for j, (ins, inp, output) in enumerate(parse_instances_reference(rec["text"]))]
        parsed = parsed or [(rec, None, None, "no_instance")]
    else:
        parsed = [(rec, *parse_instance(rec["text"], rec["type"]))]
    return [({**base, "input": inp, "output": output, "parse_status": reason or "ok"}, reason)
            for base, inp, output, reason in parsed]
