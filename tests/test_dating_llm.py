"""The optional LLM evidence: the paper's question, answers parsed into `llm` point evidence."""
from filters.dating.combine import combine_evidence
from filters.dating.evidence import Evidence
from generators.work_dates import QUESTION, llm_evidence, parse_year_answer, work_date_requests


def test_requests_ask_the_papers_question_once_per_titled_work():
    reqs = work_date_requests([("1", "Ragged Dick", "Horatio Alger"), ("2", None, "Nobody"), ("3", "X", "")])
    assert len(reqs) == 1
    assert reqs[0].messages[0]["content"] == QUESTION.format(title="Ragged Dick", author="Horatio Alger")
    assert reqs[0].parent_ids == ["1"] and reqs[0].sampling.temperature == 0.0
    assert work_date_requests([("1", "Ragged Dick", "Horatio Alger")])[0].id == reqs[0].id  # stable ids: cache


def test_answers_are_parsed_robustly():
    assert parse_year_answer("1868") == 1868
    assert parse_year_answer("It was written in 1868.") == 1868
    assert parse_year_answer("1905-1906") == 1905
    assert parse_year_answer("around the 19th century") is None
    assert parse_year_answer("12345") is None and parse_year_answer(None) is None


def test_llm_year_is_one_voice_not_the_decider():
    ev = llm_evidence({"a": "1881", "b": "no idea"}, model="m")
    assert set(ev) == {"a"} and ev["a"][0].kind == "llm" and ev["a"][0].confidence == 0.6
    # the LLM says 1881 (its answer for Uncle Remus and Brer Rabbit); the book's copyright says 1907
    r = combine_evidence(ev["a"] + [Evidence("copyright", "point", year=1907, confidence=0.9)], None)
    assert r.year == 1907 and r.date_source == "copyright"
    assert combine_evidence(ev["a"], None).year == 1881
