"""Seeds, mixture and prompts of the textbooks generator (pure functions, no model)."""
from __future__ import annotations

import collections

import pytest
from pydantic import ValidationError

from corpora.records import Record
from generators.textbooks import (AUDIENCE_TEXT, TEMPLATE_VERSION, Seed, TextbookMixture, TopicFileError,
                                  build_requests, load_topics, textbook_sampling, truncate_extract, web_seeds)

SP = textbook_sampling(64)


def seeds(n: int, topic: str | None = "astronomy") -> list[Seed]:
    return [Seed(id=f"doc-{i}", source="web", extract=f"Extract number {i} about stars and planets.", topic=topic)
            for i in range(n)]


def test_sampling_defaults_are_cosmopedias():
    assert (SP.temperature, SP.top_p, SP.top_k, SP.repetition_penalty, SP.max_tokens) == (0.6, 0.95, 50, 1.2, 64)


def test_mixture_follows_the_configured_weights():
    _, info = build_requests(seeds(4000), TextbookMixture(), SP)
    audiences = collections.Counter(i["audience"] for i in info)
    styles = collections.Counter(i["style"] for i in info)
    for name, weight in {"middle_school": 0.4, "college": 0.3, "young_children": 0.15, "professionals": 0.15}.items():
        assert abs(audiences[name] / 4000 - weight) < 0.03, (name, audiences)
    assert all(abs(c / 4000 - 0.25) < 0.03 for c in styles.values()) and len(styles) == 4
    with_topic = sum(i["topic"] is not None for i in info)
    assert abs(with_topic / 4000 - 0.5) < 0.03
    only_college = TextbookMixture(audiences={"college": 1.0}, styles={"wikihow": 1, "blogpost": 0})
    _, info = build_requests(seeds(50), only_college, SP)
    assert {(i["audience"], i["style"]) for i in info} == {("college", "wikihow")}


def test_a_seeds_prompt_does_not_depend_on_the_other_seeds():
    reqs_a, _ = build_requests(seeds(10), TextbookMixture(), SP)
    reqs_b, _ = build_requests(seeds(30)[5:], TextbookMixture(), SP)
    by_id = {r.parent_ids[0]: r for r in reqs_b}
    for r in reqs_a[5:]:
        assert by_id[r.parent_ids[0]] == r
    reqs_c, _ = build_requests(seeds(10), TextbookMixture(seed=1), SP)
    assert [r.messages for r in reqs_c] != [r.messages for r in reqs_a]  # the mixture seed matters


def test_requests_are_traceable_and_prompts_follow_the_rules():
    topic_seed = Seed(id="t1", source="topic_list", extract=None, topic="The water cycle")
    reqs, info = build_requests(seeds(20) + [topic_seed], TextbookMixture(), SP)
    assert len({r.id for r in reqs}) == 21
    for r, i in zip(reqs, info):
        prompt = r.messages[0]["content"]
        assert r.template_id == f"textbooks/{i['style']}@v{TEMPLATE_VERSION}" and r.sampling == SP
        assert r.parent_ids == [i["seed_id"]] and i["prompt"] == prompt
        assert "Do not write a title or an introduction" in prompt and '"Once upon a time"' in prompt
        assert AUDIENCE_TEXT[i["audience"]] in prompt
        if i["topic"]:
            assert i["topic"] in prompt
        else:
            assert "within the topic" not in prompt
    assert info[-1]["topic"] == "The water cycle" and "extract" not in info[-1]["prompt"].split("\n")[0].lower()
    # a web seed without a topic never gets one
    _, info = build_requests(seeds(20, topic=None), TextbookMixture(), SP)
    assert all(i["topic"] is None for i in info)


def test_mixture_rejects_unknown_names_and_bad_weights():
    with pytest.raises(ValidationError, match="unknown style"):
        TextbookMixture(styles={"poem": 1.0})
    with pytest.raises(ValidationError, match="positive sum"):
        TextbookMixture(audiences={"college": 0.0})


def test_web_seeds_truncate_on_a_word_boundary():
    text = ("Photosynthesis turns light into sugar. " * 60).strip()
    (seed,) = web_seeds([Record(id="a", text=text, source="web", metadata={"topic": "biology"})], max_chars=1000)
    assert len(seed.extract) <= 1000 and text.startswith(seed.extract) and text[len(seed.extract)] == " "
    assert seed.topic == "biology" and seed.source == "web"
    assert truncate_extract("short text") == "short text"


def test_topic_lists_yaml_and_csv(tmp_path):
    y = tmp_path / "topics.yaml"
    y.write_text("topics:\n  - Plate tectonics\n  - {id: t-ocean, topic: Ocean currents}\n")
    got = load_topics(y)
    assert [(s.id, s.topic, s.source, s.extract) for s in got][1] == ("t-ocean", "Ocean currents", "topic_list", None)
    assert got[0].id.startswith("topic-")
    c = tmp_path / "topics.csv"
    c.write_text("id,topic\nc1,Volcanoes\nc2,\n")
    with pytest.raises(TopicFileError, match=r"topics.csv: line 3: empty topic"):
        load_topics(c)
    c.write_text("name\nVolcanoes\n")
    with pytest.raises(TopicFileError, match="needs a 'topic' column"):
        load_topics(c)
    y.write_text("- Volcanoes\n- 42\n")
    with pytest.raises(TopicFileError, match="topics.yaml: item 1"):
        load_topics(y)
    with pytest.raises(TopicFileError, match="does not exist"):
        load_topics(tmp_path / "missing.yaml")


def test_shipped_config_matches_the_model_and_bad_input_is_named(tmp_path):
    from pathlib import Path

    import yaml

    from flows.config import ConfigError, defaults_yaml, load_config
    from flows.textbooks import PIPELINE, TextbooksConfig

    shipped = Path(__file__).resolve().parents[1] / "configs" / "textbooks.yaml"
    assert yaml.safe_load(shipped.read_text()) == yaml.safe_load(defaults_yaml(TextbooksConfig))
    cfg = load_config(TextbooksConfig, sets=["sampling.max_tokens=32"])
    assert (cfg.sampling.temperature, cfg.sampling.repetition_penalty, cfg.sampling.max_tokens) == (0.6, 1.2, 32)
    with pytest.raises(ConfigError, match="mixture.styles"):
        load_config(TextbooksConfig, sets=["mixture.styles.poem=1.0"])
    bad = tmp_path / "topics.yaml"
    bad.write_text("topics: [ok, {name: x}]\n")
    with pytest.raises(TopicFileError, match="topics.yaml: item 1"):
        PIPELINE.preflight(load_config(TextbooksConfig, sets=[f"topics={bad}", "filters.langid.enabled=false"]))
    with pytest.raises(ValueError, match="generation.backend.model: /no/such/model does not exist"):
        PIPELINE.preflight(load_config(TextbooksConfig, sets=["generation.backend.kind=vllm",
                                                              "generation.backend.model=/no/such/model"]))
