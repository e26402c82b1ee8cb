"""The model catalog: prices, context windows, capabilities, providers and quality priors.

A catalog is a YAML (or JSON) mapping ``models: {name: spec}``; see ``router/catalog/default.yaml``.
Loading validates every field and raises :class:`~router.errors.CatalogError` naming the model
and field at the first problem.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CatalogError, UnknownModelError
from ..tasks.taxonomy import TASK_TYPES, TEXT_TASK_TYPES
from ..config import default_catalog_path

__all__ = ["CAPABILITIES", "KNOWN_PARAMS", "Pricing", "Provider", "ModelSpec", "ModelCatalog"]

#: Capabilities a model may declare. ``reasoning`` marks reasoning-style models whose API
#: rejects sampling parameters (see ``unsupported_params``).
CAPABILITIES = frozenset({"vision", "reasoning", "tools", "json_mode", "streaming"})
#: Request parameters a model may declare unsupported (the client drops them).
KNOWN_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "n",
        "tools",
        "tool_choice",
        "response_format",
        "stop",
        "seed",
    }
)
_STRENGTHS = frozenset(TASK_TYPES) | {"fast"}
_MODEL_FIELDS = frozenset(
    {
        "provider",
        "pricing",
        "context_window",
        "max_output_tokens",
        "capabilities",
        "unsupported_params",
        "strengths",
        "quality_priors",
        "aliases",
        "description",
    }
)


@dataclass(frozen=True)
class Pricing:
    """USD per one million tokens."""

    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


@dataclass(frozen=True)
class Provider:
    """Where a model is served: an OpenAI-compatible base URL and the env var holding its key."""

    base_url: str
    api_key_env: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    provider: Provider
    pricing: Pricing
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    quality_priors: Mapping[str, float]
    unsupported_params: frozenset[str] = frozenset()
    strengths: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def vision(self) -> bool:
        return "vision" in self.capabilities

    def prior(self, task: str) -> float:
        """Prior P(good answer) for ``task`` (0 for vision on a model without vision)."""
        if task == "vision" and not self.vision:
            return 0.0
        return self.quality_priors[task]

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return self.pricing.cost(prompt_tokens, completion_tokens)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "provider": {"base_url": self.provider.base_url, "api_key_env": self.provider.api_key_env},
            "pricing": {
                "input_per_1m": self.pricing.input_per_1m,
                "output_per_1m": self.pricing.output_per_1m,
            },
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "capabilities": sorted(self.capabilities),
            "unsupported_params": sorted(self.unsupported_params),
            "strengths": list(self.strengths),
            "quality_priors": dict(self.quality_priors),
        }
        if self.aliases:
            d["aliases"] = list(self.aliases)
        if self.description:
            d["description"] = self.description
        return d


def _number(value: Any, model: str, fld: str, *, lo: float | None = 0.0, hi: float | None = None,
            integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CatalogError(f"must be a number, got {value!r}", model=model, field=fld)
    if integer and (not float(value).is_integer()):
        raise CatalogError(f"must be an integer, got {value!r}", model=model, field=fld)
    if not math.isfinite(value):
        raise CatalogError(f"must be finite, got {value!r}", model=model, field=fld)
    if lo is not None and value < lo:
        raise CatalogError(f"must be >= {lo:g}, got {value!r}", model=model, field=fld)
    if hi is not None and value > hi:
        raise CatalogError(f"must be <= {hi:g}, got {value!r}", model=model, field=fld)
    return int(value) if integer else float(value)


def _mapping(value: Any, model: str, fld: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(f"must be a mapping, got {type(value).__name__}", model=model, field=fld)
    return value


def _str_list(value: Any, model: str, fld: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"must be a list of strings, got {value!r}", model=model, field=fld)
    return list(value)


def _require(spec: Mapping[str, Any], key: str, model: str, prefix: str = "") -> Any:
    if key not in spec or spec[key] is None:
        raise CatalogError("is missing", model=model, field=prefix + key)
    return spec[key]


def _parse_model(name: str, spec: Any, defaults: Mapping[str, Any]) -> ModelSpec:
    spec = _mapping(spec, name, "(entry)")
    unknown = set(spec) - _MODEL_FIELDS
    if unknown:
        raise CatalogError(
            f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_MODEL_FIELDS)}", model=name,
            field=sorted(unknown)[0],
        )
    prov_raw = dict(defaults.get("provider") or {})
    prov_raw.update(_mapping(spec.get("provider") or {}, name, "provider"))
    base_url = _require(prov_raw, "base_url", name, "provider.")
    key_env = _require(prov_raw, "api_key_env", name, "provider.")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise CatalogError(f"must be an http(s) URL, got {base_url!r}", model=name, field="provider.base_url")
    if not isinstance(key_env, str) or not key_env.replace("_", "").isalnum() or key_env.startswith("sk-"):
        raise CatalogError(
            f"must name an environment variable (never the key itself), got {key_env!r}",
            model=name, field="provider.api_key_env",
        )
    pricing_raw = _mapping(_require(spec, "pricing", name), name, "pricing")
    pricing = Pricing(
        input_per_1m=_number(_require(pricing_raw, "input_per_1m", name, "pricing."), name, "pricing.input_per_1m"),
        output_per_1m=_number(_require(pricing_raw, "output_per_1m", name, "pricing."), name, "pricing.output_per_1m"),
    )
    context = _number(_require(spec, "context_window", name), name, "context_window", lo=1, integer=True)
    max_out = _number(_require(spec, "max_output_tokens", name), name, "max_output_tokens", lo=1, integer=True)
    if max_out > context:
        raise CatalogError(f"{max_out} exceeds context_window {context}", model=name, field="max_output_tokens")
    caps = _str_list(spec.get("capabilities"), name, "capabilities")
    for cap in caps:
        if cap not in CAPABILITIES:
            raise CatalogError(f"unknown capability {cap!r}; known: {sorted(CAPABILITIES)}", model=name,
                               field="capabilities")
    params = _str_list(spec.get("unsupported_params"), name, "unsupported_params")
    for p in params:
        if p not in KNOWN_PARAMS:
            raise CatalogError(f"unknown parameter {p!r}; known: {sorted(KNOWN_PARAMS)}", model=name,
                               field="unsupported_params")
    strengths = _str_list(spec.get("strengths"), name, "strengths")
    for s in strengths:
        if s not in _STRENGTHS:
            raise CatalogError(f"unknown strength {s!r}; known: {sorted(_STRENGTHS)}", model=name,
                               field="strengths")
    priors_raw = _mapping(_require(spec, "quality_priors", name), name, "quality_priors")
    default = priors_raw.get("default")
    priors: dict[str, float] = {}
    for task, value in priors_raw.items():
        if task != "default" and task not in TASK_TYPES:
            raise CatalogError(f"unknown task {task!r}; known: {list(TASK_TYPES)}", model=name,
                               field=f"quality_priors.{task}")
        priors[task] = _number(value, name, f"quality_priors.{task}", lo=0.0, hi=1.0)
    for task in TEXT_TASK_TYPES:
        if task not in priors:
            if default is None:
                raise CatalogError("is missing (give every task or a 'default')", model=name,
                                   field=f"quality_priors.{task}")
            priors[task] = float(default)
    if "vision" in caps and "vision" not in priors:
        if default is None:
            raise CatalogError("is missing for a vision model", model=name, field="quality_priors.vision")
        priors["vision"] = float(default)
    priors.pop("default", None)
    aliases = _str_list(spec.get("aliases"), name, "aliases")
    return ModelSpec(
        name=name,
        provider=Provider(base_url=base_url.rstrip("/"), api_key_env=key_env),
        pricing=pricing,
        context_window=int(context),
        max_output_tokens=int(max_out),
        capabilities=frozenset(caps),
        quality_priors=dict(priors),
        unsupported_params=frozenset(params),
        strengths=tuple(strengths),
        aliases=tuple(aliases),
        description=str(spec.get("description") or ""),
    )


def _reserved(name: str) -> bool:
    """``auto`` and ``auto:<anything>`` are the router's own model names, never a catalog entry."""
    return name == "auto" or name.startswith("auto:")


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CatalogError(f"duplicate key {key!r} (a later entry would silently replace the first)")
        out[key] = value
    return out


def _load_yaml_unique(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key repeated in one mapping, naming the key and its line
    (PyYAML keeps the last one silently: a second ``gpt-4o:`` would redirect the model)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise CatalogError(f"line {line}: duplicate key {key!r} (first at line {seen[key]}; "
                                   "a later entry would silently replace the first)")
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class ModelCatalog:
    """An ordered, validated set of :class:`ModelSpec`. Build with :meth:`load` or :meth:`from_dict`."""

    models: Mapping[str, ModelSpec]
    source: str = "<dict>"
    _alias_index: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "ModelCatalog":
        if not isinstance(data, Mapping):
            raise CatalogError(f"{source}: the catalog must be a mapping with a 'models' key")
        models_raw = data.get("models")
        if not isinstance(models_raw, Mapping) or not models_raw:
            raise CatalogError(f"{source}: 'models' must be a non-empty mapping of name -> spec")
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise CatalogError(f"{source}: 'defaults' must be a mapping")
        models: dict[str, ModelSpec] = {}
        aliases: dict[str, str] = {}
        for name, spec in models_raw.items():
            if not isinstance(name, str) or not name.strip():
                raise CatalogError(f"{source}: model names must be non-empty strings, got {name!r}")
            if _reserved(name):
                raise CatalogError(f"{source}: model name {name!r} is reserved for routing (auto, auto:<tier>)",
                                   model=name)
            try:
                models[name] = _parse_model(name, spec, defaults)
            except CatalogError as exc:
                raise CatalogError(f"{source}: {exc}", model=None) from None
            for alias in models[name].aliases:
                if _reserved(alias):
                    raise CatalogError(f"{source}: alias {alias!r} is reserved for routing (auto, auto:<tier>)",
                                       model=name, field="aliases")
                if alias in models_raw or alias in aliases:
                    raise CatalogError(f"{source}: alias {alias!r} is used twice", model=name, field="aliases")
                aliases[alias] = name
        return cls(models=models, source=source, _alias_index=aliases)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ModelCatalog":
        """Load and validate a YAML/JSON catalog; the default is ``router/catalog/default.yaml``."""
        p = Path(path) if path is not None else default_catalog_path()
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"cannot read catalog {p}: {exc.strerror or exc}") from None
        try:
            if p.suffix == ".json":
                data = json.loads(text, object_pairs_hook=_unique_json_object)
            else:
                data = _load_yaml_unique(text)
        except CatalogError as exc:
            raise CatalogError(f"{p}: {exc}") from None
        except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError
            raise CatalogError(f"{p}: not valid YAML/JSON: {exc}") from None
        return cls.from_dict(data, source=str(p))

    # -- mapping-like access -------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models.values())

    def __contains__(self, name: object) -> bool:
        return name in self.models or name in self._alias_index

    def resolve(self, name: str) -> str:
        """The canonical name of ``name`` or one of its aliases; :class:`UnknownModelError` else."""
        if name in self.models:
            return name
        if name in self._alias_index:
            return self._alias_index[name]
        raise UnknownModelError(name, self.names)

    def __getitem__(self, name: str) -> ModelSpec:
        return self.models[self.resolve(name)]

    def to_dict(self) -> dict[str, Any]:
        return {"models": {n: m.to_dict() for n, m in self.models.items()}}

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form: equal catalogs hash equal."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()
