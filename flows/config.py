"""Config loading for `flows run`: model defaults <- --config YAML <- --input/--output <- --set key=value.

Config is data: each pipeline has a pydantic model (unknown keys are errors, with a did-you-mean); the
defaults live in the model and are mirrored in `configs/<pipeline>.yaml`.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from corpora.config import RunConfig  # noqa: F401 (pipelines import it from here)


class ConfigError(ValueError):
    """A bad config: the message names the key or file and the reason (the CLI prints it, exit code 2)."""


def config_hash(cfg: BaseModel, exclude: set[str] = frozenset({"inputs", "output", "overwrite"})) -> str:
    data = cfg.model_dump(mode="json", exclude=set(exclude) | {"license"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = data
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def parse_set(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _union_args(ann: Any) -> tuple:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(ann) if a is not type(None))
    return (ann,)


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _list_only_key(model: type[BaseModel], key: str) -> bool:
    """True when the dotted key names a field that takes a list and no scalar (`filters.langid.languages`)."""
    cur: Any = model
    parts = key.split(".")
    for i, p in enumerate(parts):
        if not _is_model(cur) or p not in cur.model_fields:
            return False
        args = _union_args(cur.model_fields[p].annotation)
        if i == len(parts) - 1:
            origins = [typing.get_origin(a) or a for a in args]
            return bool(origins) and all(o in (list, tuple, set, frozenset) for o in origins)
        models = [a for a in args if _is_model(a)]
        cur = models[0] if len(models) == 1 else None
    return False


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _model_at(model: type[BaseModel], path: tuple) -> type[BaseModel] | None:
    cur: Any = model
    for p in path:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or p not in cur.model_fields:
            return None
        cur = cur.model_fields[p].annotation
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _explain(model: type[BaseModel], err: ValidationError) -> str:
    e = err.errors()[0]
    loc = tuple(x for x in e["loc"] if not isinstance(x, int))
    key = ".".join(str(x) for x in e["loc"])
    if e["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1, cutoff=0.6)
            prefix = ".".join(str(x) for x in loc[:-1])
            if close:
                hint = f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
        return f"unknown config key '{key}'{hint}"
    return f"config key '{key}': {e['msg']} (got {e.get('input')!r})"


def load_config(model: type[BaseModel], *, config_file: str | None = None, inputs: list[str] | None = None,
                output: str | None = None, sets: list[str] | None = None) -> BaseModel:
    data: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"{config_file}: config file does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{config_file}: not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: expected a mapping of config keys at the top level")
        data = _deep_merge(data, loaded)
    if inputs:
        data["inputs"] = list(inputs)
    if output:
        data["output"] = output
    for item in sets or []:
        key, value = parse_set(item)
        if value is not None and not isinstance(value, (list, tuple, dict)) and _list_only_key(model, key):
            value = [value]  # `--set filters.langid.languages=en` means [en]
        _set_dotted(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        where = f"{config_file}: " if config_file else ""
        raise ConfigError(where + _explain(model, err)) from None


def defaults_yaml(model: type[BaseModel]) -> str:
    return yaml.safe_dump(model().model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def effective_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
