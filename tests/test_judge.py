"""generators/judge.py: the shared LLM judge (yes/no or a score, parsed answer + raw text) through real Rounds on
the replay backend; impossible distillation's LLM critic is built on it (tests/test_impossible_distillation.py)."""
from __future__ import annotations

import json

import pytest

from generators.backends import ReplayConfig
from generators.backends.base import SamplingParams
from generators.judge import Judge, Verdict, score, yes_no
from generators.rounds import Rounds
from generators.settings import GenerationSettings
from generators.task import Template

ENTAILS = Template("test/entails", 1, "A: {a}\nB: {b}\nDoes A entail B? Answer yes or no.\nAnswer:")
RATE = Template("test/rate", 1, "Rate this answer from 1 to 5: {answer}")


def _rounds(tmp_path, rows: list[dict]) -> Rounds:
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({**r, "model": "judge-lm"}) + "\n" for r in rows))
    return Rounds(tmp_path / "work", GenerationSettings(backend=ReplayConfig(path=str(replay))), source="t",
                  progress=False, log=lambda m: None)


def test_parsers():
    assert [yes_no(t) for t in (" Yes.", "YES", "no, because", " No", "maybe", "")] == [True, True, False, False,
                                                                                         None, None]
    five = score(1, 5)
    assert five("4") == 4.0 and five("Score: 3/5") == 3.0 and five("I give it 4.5.") == 4.5
    assert five("10 out of 10") is None and five("none") is None and five("0, then 2") == 2.0


def test_yes_no_judge_returns_answers_and_raw_text_and_memoises(tmp_path):
    items = [{"a": "It rained.", "b": "It was wet."}, {"a": "It was wet.", "b": "It rained."},
             {"a": "Cats purr.", "b": "Dogs bark."}, {"a": "x", "b": "unanswered"}]
    rounds = _rounds(tmp_path, [{"prompt": ENTAILS.format(**items[0]), "text": " Yes."},
                                {"prompt": ENTAILS.format(**items[1]), "text": " no"},
                                {"prompt": ENTAILS.format(**items[2]), "text": "I cannot say"}])
    judge = Judge(rounds, ENTAILS)
    got = judge.ask(items)
    assert got[:3] == [Verdict(True, " Yes.", "judge-lm"), Verdict(False, " no", "judge-lm"),
                       Verdict(None, "I cannot say", "judge-lm")]
    assert got[3] == Verdict(None, None, None)  # no answer in the file: a failed request
    assert judge.model == "judge-lm" and judge.calls == 1 and set(rounds.reports) == {"judge#1"}
    assert rounds.reports["judge#1"]["requests"] == 4 and rounds.reports["judge#1"]["failed"] == 1
    # the same items again (and a duplicate): nothing new is asked, no new round
    assert judge.ask([items[1], items[1]]) == [got[1], got[1]] and judge.calls == 1
    assert set(rounds.reports) == {"judge#1"}


def test_score_judge_in_chat_form_one_named_round(tmp_path):
    rounds = _rounds(tmp_path, [{"prompt": RATE.format(answer="Paris"), "text": "5"},
                                {"prompt": RATE.format(answer="Lyon"), "text": "Score: 2 of 5"}])
    judge = Judge(rounds, RATE, score(1, 5), SamplingParams(temperature=0.0, max_tokens=8), round="grade",
                  chat=True, numbered=False)
    got = judge.ask([{"answer": "Paris"}, {"answer": "Lyon"}])
    assert [v.answer for v in got] == [5.0, 2.0] and got[1].raw == "Score: 2 of 5"
    assert set(rounds.reports) == {"grade"}
    reqs = judge.task.requests([{"answer": "Paris"}])
    assert reqs[0].messages == [{"role": "user", "content": RATE.format(answer="Paris")}]
    assert reqs[0].template_id == "test/rate@v1" and reqs[0].meta == {"answer": "Paris"}
    # a request id names the template and the item: another template version asks again
    assert reqs[0].id != Judge(rounds, Template("test/rate", 2, RATE.text)).task.requests([{"answer": "Paris"}])[0].id
    with pytest.raises(ValueError, match="one answer per item"):
        Judge(rounds, RATE, sampling=SamplingParams(n=3))
