"""unlearning-whp defaults (no model run): the bundled sample ends in the unlearned model unless the user says
otherwise; the reinforce default is the light one the sweep picked (bench/results/whp_reinforce.txt)."""
from __future__ import annotations

from flows.config import load_config
from flows.unlearning import WHP_DEMO, WHP_PIPELINE
from generators.reinforce import ReinforceSettings
from generators.seeds import apply_demo


def test_the_demo_turns_the_finetune_on_unless_the_user_set_it(tmp_path):
    cfg = load_config(WHP_PIPELINE.config_model)
    assert cfg.finetune.enabled is False  # the model default: your own targets stay labels-only
    demo_cfg, applied = apply_demo(cfg, WHP_DEMO)
    assert demo_cfg.finetune.enabled is True and applied == {"finetune.enabled": True}
    assert cfg.finetune.enabled is False  # the given config is not changed
    off = load_config(WHP_PIPELINE.config_model, sets=["finetune.enabled=false"])
    kept, applied = apply_demo(off, WHP_DEMO)
    assert kept.finetune.enabled is False and applied == {}  # labels only, by config
    steps = load_config(WHP_PIPELINE.config_model, sets=["finetune.steps=3"])
    tuned, applied = apply_demo(steps, WHP_DEMO)
    assert tuned.finetune.enabled is True and tuned.finetune.steps == 3  # another finetune key set: still the demo


def test_the_reinforce_default_is_light():
    # 1e-4 x 10 steps lowered every raw logit by ~9 on the demo, so the labels stayed the baseline's argmax
    assert ReinforceSettings().lr == 1e-5 and ReinforceSettings().steps == 10
    assert load_config(WHP_PIPELINE.config_model).reinforce.lr == 1e-5


def test_whp_is_a_generator_on_the_contract_with_its_config_keys_in_their_order(tmp_path):
    import pytest

    from generators.settings import BackendUnavailable
    from generators.whp_generator import GENERATOR

    assert WHP_PIPELINE.config_model is GENERATOR.config and not GENERATOR.postprocess
    assert WHP_PIPELINE.layout.names() == ("data", "rejected", "quarantine", "blocks", "anchors", "model")
    # the dataset card prints the config in this order: the keys of the pipeline before it moved onto the contract
    assert list(WHP_PIPELINE.config_model.model_fields) == [
        "inputs", "output", "overwrite", "shard_rows", "shard_mb", "license", "text_field", "id_field", "max_docs",
        "baseline_model", "reinforced_model", "reinforce", "anchors", "blocks", "models", "finetune", "generation"]
    # file anchors run no round: no backend is checked, but a round override that names no round is still an error
    missing = tmp_path / "none.jsonl"
    ok = load_config(WHP_PIPELINE.config_model, sets=["generation.backend.kind=replay",
                                                      f"generation.backend.path={missing}"])
    WHP_PIPELINE.preflight(ok)
    with pytest.raises(BackendUnavailable, match=r"generation.backend.path"):
        WHP_PIPELINE.preflight(ok.model_copy(update={"anchors": ok.anchors.model_copy(update={"source": "llm"})}))
    typo = load_config(WHP_PIPELINE.config_model, sets=["generation.rounds.anchor.shard_size=2"])
    with pytest.raises(BackendUnavailable, match=r"unknown round\(s\) \['anchor'\] .*anchors"):
        WHP_PIPELINE.preflight(typo)


def test_document_fields_are_declared_once_with_the_same_defaults():
    from flows.diachronic import DiachronicConfig
    from generators.contract import DocumentFields, GeneratorConfig
    from generators.whp_config import ReinforceConfig, WhpConfig

    for model in (GeneratorConfig, WhpConfig, ReinforceConfig, DiachronicConfig):
        assert issubclass(model, DocumentFields)
        assert (model().text_field, model().id_field) == ("text", "id")
        names = list(model.model_fields)
        assert names.index("id_field") == names.index("text_field") + 1 == names.index("license") + 2
