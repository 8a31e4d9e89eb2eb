"""generators/task.py: a declared round (template id in the cache key, request building, parse, accept/reject
with a reason) run through real Rounds on the replay backend."""
from __future__ import annotations

import json

import pytest

from generators.backends import ReplayConfig
from generators.backends.base import SamplingParams
from generators.rounds import Rounds
from generators.settings import GenerationSettings
from generators.task import Task, Template, run_task

QUESTION = Template("test/capital", 2, "What is the capital of {country}? One word.")


def _rounds(tmp_path, answers: dict[str, str]) -> Rounds:
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"prompt": QUESTION.format(country=c), "text": t, "model": "m"}) + "\n"
                              for c, t in answers.items()))
    return Rounds(tmp_path / "work", GenerationSettings(backend=ReplayConfig(path=str(replay))), source="t",
                  progress=False, log=lambda m: None)


def _ask(task: Task, country: str | None):
    if not country:
        return None  # skipped: no request
    return task.ask("cap-" + country, user=task.template.format(country=country), parent_ids=[country],
                    meta={"country": country})


def _task(**kw) -> Task:
    return Task("capitals", QUESTION, SamplingParams(temperature=0.0, max_tokens=4), request=_ask, **kw)


def test_template_id_and_requests():
    assert QUESTION.id == "test/capital@v2"
    reqs = _task().requests(["France", None, "Peru"])
    assert [r.id for r in reqs] == ["cap-France", "cap-Peru"]
    assert reqs[0].template_id == "test/capital@v2" and reqs[0].sampling.max_tokens == 4
    assert reqs[0].messages == [{"role": "user", "content": "What is the capital of France? One word."}]
    assert reqs[0].meta == {"country": "France"} and reqs[0].parent_ids == ["France"]
    raw = Task("raw", QUESTION).ask("x", prompt="p", template=Template("other", 3))
    assert raw.prompt == "p" and raw.template_id == "other@v3"
    with pytest.raises(ValueError, match="not both"):
        Task("raw", QUESTION).ask("x", user="u", messages=[{"role": "user", "content": "u"}])
    with pytest.raises(TypeError, match="declares no `request`"):
        Task("none", QUESTION).requests(["a"])


def test_run_task_parses_accepts_and_rejects_with_reasons(tmp_path):
    rounds = _rounds(tmp_path, {"France": " Paris.", "Peru": "I do not know", "Chile": " lima",
                              "Spain": "Spain"})

    def parse(text):
        word = text.strip().rstrip(".")
        return word if word.istitle() and " " not in word else None

    def accept(record, value):
        if value is None:
            return None, "no_city"
        if value == record["country"]:
            return None, "echoes_the_country"  # rejected as the record came
        return {**record, "text": value}, None

    out = run_task(rounds, _task(parse=parse, accept=accept), ["France", "Peru", "Chile", "Spain", "Japan"])
    assert [r["text"] for r in out.accepted] == ["Paris"] and out.accepted[0]["country"] == "France"
    assert out.accepted[0]["template_id"] == "test/capital@v2" and out.accepted[0]["round"] == "capitals"
    # Chile's " lima" does not parse (lower case) either; Japan has no answer: a failed request, apart
    assert sorted((r["country"], r["reason"]) for r in out.rejected) == [("Chile", "no_city"), ("Peru", "no_city"),
                                                                         ("Spain", "echoes_the_country")]
    assert next(r for r in out.rejected if r["country"] == "Spain")["text"] == "Spain"
    assert [r["country"] for r in out.failed] == ["Japan"] and out.failed[0]["reason"] == "generation_failed"
    assert len(out.parsed) == 4 and set(rounds.reports) == {"capitals"}
    # without accept: a parse of None rejects with the task's `unparsed` reason; the template id is in the cache
    # key, so a new version asks again
    out2 = run_task(rounds, _task(parse=parse, unparsed="not_a_city"), ["France", "Chile"], name="capitals#2")
    assert [r["reason"] for r in out2.rejected] == ["not_a_city"] and out2.accepted[0]["text"] == " Paris."
    assert out2.output.report.cached == 0
    again = run_task(rounds, _task(parse=parse), ["France", "Chile"], name="capitals#2")
    assert again.output.report.cached == 2 and again.output.report.generated == 0


def test_a_new_template_version_is_a_new_cache_key(tmp_path):
    rounds = _rounds(tmp_path, {"France": "Paris"})
    run_task(rounds, _task(), ["France"])
    v3 = Task("capitals", Template(QUESTION.name, 3, QUESTION.text), request=_ask)
    out = run_task(rounds, v3, ["France"])
    assert out.output.report.cached == 0 and out.accepted[0]["template_id"] == "test/capital@v3"
    assert run_task(rounds, _task(), ["France"]).output.report.cached == 1


def test_a_rounds_engine_is_picked_by_round_name(tmp_path):
    """`GenerationSettings.with_round(name, backend=...)`: that round (and its loop rounds name#k) loads that engine,
    keeping the round's other overrides; other rounds keep the run's engine."""
    from generators.settings import RoundSettings

    rounds = _rounds(tmp_path, {"France": "Paris"})
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"prompt": QUESTION.format(country="France"), "text": "Lyon", "model": "m2"}) + "\n")
    base = rounds.settings.model_copy(update={"rounds": {"capitals": RoundSettings(shard_size=3)}})
    switched = base.with_round("capitals", backend=ReplayConfig(path=str(other)))
    assert switched.for_round("capitals#2").shard_size == 3 and switched.for_round("capitals").backend.path == str(other)
    assert switched.for_round("judge").backend.path == rounds.settings.backend.path and base.rounds["capitals"].backend is None
    out = run_task(rounds, _task(), ["France"], settings=switched)
    assert out.accepted[0]["text"] == "Lyon" and out.accepted[0]["model"] == "m2"
    assert run_task(rounds, _task(), ["France"], name="capitals#2").accepted[0]["text"] == "Paris"


def test_combine_gives_one_row_per_input_in_input_order(tmp_path):
    rounds = _rounds(tmp_path, {"France": " Paris.", "Peru": " Lima."})

    def combine(country, ok, failed):
        row = {"country": country, "answers": [r["text"] for r in ok], "failed": len(failed)}
        return row, None if ok else ("no_request" if not failed else "all_failed")

    out = run_task(rounds, _task(combine=combine), ["Peru", None, "Atlantis", "France"])
    assert [r["country"] for r in out.accepted] == ["Peru", "France"]
    assert out.accepted[0]["answers"] == [" Lima."]
    assert [(r["country"], r["reason"], r["failed"]) for r in out.rejected] == [(None, "no_request", 0),
                                                                              ("Atlantis", "all_failed", 1)]
    assert len(out.failed) == 1 and out.failed[0]["reason"] == "generation_failed"


def test_variant_is_part_of_the_template_id():
    req = _task().ask("x", user="u", variant="ab12")
    assert req.template_id == "test/capital@v2.ab12"


def test_a_training_step_trains_into_its_named_folder_and_lists_every_step(tmp_path):
    rounds = _rounds(tmp_path, {})
    seen = []

    def fit(folder):
        seen.append(folder)
        return {"steps": len(seen)}

    first = rounds.train("student#2", "k1", fit)
    second = rounds.train("student#2", "k2", fit)
    assert first == (tmp_path / "work" / "student-2" / "k1", {"steps": 1})
    assert second[0] == tmp_path / "work" / "student-2" / "k2" and seen == [first[0], second[0]]
    assert [(t["key"], t["steps"]) for t in rounds.trained["student#2"]] == [("k1", 1), ("k2", 2)]


def test_accept_many_makes_several_rows_of_one_completion(tmp_path):
    """One completion -> any number of rows (here one per comma-separated city), each kept or rejected with its
    reason; a completion that holds none gives no row; `rows` lists every row in order, as made."""
    rounds = _rounds(tmp_path, {"France": " Paris, lyon, Nice", "Peru": " ", "Chile": " Santiago"})

    def cities(record, text):
        names = [w.strip() for w in text.split(",") if w.strip()]
        return [({**record, "id": f"{record['id']}-{j}", "text": name}, None if name.istitle() else "lower_case")
                for j, name in enumerate(names)]

    out = run_task(rounds, _task(accept_many=cities), ["France", "Peru", "Chile"])
    assert [r["text"] for r in out.accepted] == ["Paris", "Nice", "Santiago"]
    assert [(r["text"], r["reason"], r["country"]) for r in out.rejected] == [("lyon", "lower_case", "France")]
    assert [r["text"] for r in out.rows] == ["Paris", "lyon", "Nice", "Santiago"]
    assert all("reason" not in r for r in out.rows) and len({r["id"] for r in out.rows}) == 4
    assert set(out.parsed) == {r["id"] for r in out.output.ok} and out.failed == []  # Peru: answered, no row
    # one-row tasks list their rows too: a rejected one without the reason the rejected list adds
    one = run_task(rounds, _task(parse=lambda t: t.strip() or None), ["France", "Peru"])
    assert [r["country"] for r in one.rows] == ["France", "Peru"] and "reason" not in one.rows[1]
    assert [r["reason"] for r in one.rejected] == ["unparseable"]
    with pytest.raises(ValueError, match="not both"):
        _task(accept=lambda r, v: (r, None), accept_many=cities)


def test_ordered_sorts_completions_in_request_order(tmp_path):
    """`ordered=True`: the rows follow the requests' order whatever order the round's records came back in."""
    from dataclasses import replace

    from generators.task import in_request_order

    rounds = _rounds(tmp_path, {"France": "Paris", "Peru": "Lima", "Chile": "Santiago"})
    out = run_task(rounds, _task(), ["Peru", "France", "Chile"]).output
    shuffled = replace(out, ok=[out.ok[2], out.ok[0], out.ok[1]])
    assert [r["text"] for r in _task().sort(shuffled).accepted] == ["Santiago", "Lima", "Paris"]  # as they came
    assert [r["text"] for r in _task(ordered=True).sort(shuffled).accepted] == ["Lima", "Paris", "Santiago"]
    assert [r["id"] for r in in_request_order(shuffled)] == [r["id"] for r in out.ok]
