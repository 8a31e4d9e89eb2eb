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
