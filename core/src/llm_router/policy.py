"""The routing policy: one YAML file that says everything about routing, validated by pydantic.

Loading keeps the position of every YAML node, so each problem — YAML syntax, unknown field, wrong type,
unknown component or model, missing environment variable — is reported as ``file:line:column: field:
message``. ``${VAR}`` and ``${VAR:-default}`` in string values are expanded from the environment.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .cache.config import CachePolicy
from .errors import PolicyError, PolicyIssue
from .taxonomy import DEFAULT_TASKS, TaskSpec, Taxonomy
from .tracing import TelemetryPolicy
from .types import Capabilities, Constraints, Pace, Preferences

__all__ = [
    "ComponentSpec",
    "DeploymentTarget",
    "FallbackPolicy",
    "GatewayKey",
    "GatewayPolicy",
    "ModelDeployments",
    "ModelSpec",
    "Policy",
    "ProviderSpec",
    "RouteRule",
    "SourceMap",
    "StatePolicy",
    "load_policy",
    "parse_policy",
]

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --------------------------------------------------------------------------------------------------
# The policy model
# --------------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(_Strict):
    """A component picked by name, with its parameters: ``rules`` or ``{rules: {threshold: 0.8}}``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value, "params": {}}
        if isinstance(value, Mapping) and set(value) != {"name", "params"} and "name" not in value:
            if len(value) != 1:
                raise ValueError(
                    f"a component is written as a name or as {{name: {{parameters}}}}; got keys {sorted(value)}"
                )
            ((name, params),) = value.items()
            if params is None:
                params = {}
            if not isinstance(params, Mapping):
                raise ValueError(f"parameters of {name!r} must be a mapping, got {type(params).__name__}")
            return {"name": name, "params": dict(params)}
        return value


class ProviderSpec(BaseModel):
    """A provider instance: ``type`` names the registered provider class (default: the entry's own key);
    every other key is a parameter validated by that class's ``Config``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str | None = None
    package: str | None = Field(default=None, description="the distribution that provides this type (for hints)")
    if_not_installed: dict[str, Any] | None = Field(
        default=None,
        description="another entry (type, package, parameters) used instead when this type is not installed, "
        "e.g. google on an OpenAI-compatible endpoint when llm-router-provider-google is absent",
    )

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PriceSpec(_Strict):
    input_per_mtok: Annotated[float, Field(ge=0)]
    output_per_mtok: Annotated[float, Field(ge=0)]
    source: str = "policy"


class ModelSpec(_Strict):
    """A model to add to the catalogue, or fields to override on a built-in one (same ``id``)."""

    id: str = Field(pattern=r"^[^/\s]+/\S+$", description="<provider>/<model>")
    provider: str | None = None
    model: str | None = None
    display_name: str | None = None
    price: PriceSpec | None = None
    context_window: Annotated[int, Field(gt=0)] | None = None
    max_output_tokens: Annotated[int, Field(gt=0)] | None = None
    capabilities: Capabilities | None = None
    quality: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None
    ttft_ms: Annotated[float, Field(ge=0)] | None = None
    tokens_per_second: Annotated[float, Field(gt=0)] | None = None
    tokenizer_exact: bool | None = None
    released: datetime.date | None = None
    deprecated_on: datetime.date | None = None
    retires_on: datetime.date | None = None
    successor: str | None = None
    lifecycle_source: str | None = None
    enabled: bool = True


class RouteWhen(_Strict):
    task: list[str] | None = None
    min_confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("task", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RouteRule(_Strict):
    """Which models a request may use, by its task: the first rule whose ``when`` matches applies."""

    name: str | None = None
    when: RouteWhen = Field(default_factory=RouteWhen)
    models: Literal["*"] | list[str] = Field(
        default="*", description="model ids or glob patterns (openai/*); '*' means the whole catalogue"
    )
    preferences: Preferences | None = None
    constraints: Constraints | None = None


class Variant(_Strict):
    """One arm of an experiment: its share of the traffic and what it changes (on top of the policy and the
    matching route; a caller's own preferences and constraints still win)."""

    share: Annotated[float, Field(gt=0)] = Field(default=1.0, description="relative share of the traffic")
    preferences: Preferences | None = None
    constraints: Constraints | None = None
    routes: list[RouteRule] | None = Field(default=None, description="replace the policy's routes for this variant")
    classify: list[ComponentSpec] | None = Field(
        default=None,
        description="replace the policy's classifier cascade for this variant (the same form as `classify:`)",
    )


class Experiment(_Strict):
    """An A/B test: the traffic is split between ``variants`` by a hash of the caller (sticky)."""

    name: str = Field(min_length=1, pattern=r"^[^=;\s]+$")
    split_by: Literal["user", "key"] = Field(
        default="user",
        description="user: the caller-given user id (metadata.user, OpenAI's `user`), else the API key; "
        "key: the API key, else the user id. A request with neither gets a variant by its request id.",
    )
    variants: dict[str, Variant] = Field(min_length=2)

    @field_validator("variants")
    @classmethod
    def _names(cls, value: dict[str, Variant]) -> dict[str, Variant]:
        bad = [n for n in value if not n or any(ch in n for ch in "=; ")]
        if bad:
            raise ValueError(f"variant names may not be empty or contain '=', ';' or spaces: {bad}")
        return value


ErrorKind = Literal[
    "rate_limit",
    "timeout",
    "connection",
    "server_error",
    "authentication",
    "permission",
    "bad_request",
    "context_length",
    "content_filter",
    "provider_error",
    "postprocess",
]


DEFAULT_RETRY_ON: tuple[ErrorKind, ...] = ("rate_limit", "timeout", "connection", "server_error")


class FallbackPolicy(_Strict):
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Retries of the same model on a retryable error, before moving to the next candidate."""
    backoff_ms: Annotated[float, Field(ge=0)] = 200
    max_backoff_ms: Annotated[float, Field(ge=0)] = 5000
    on: list[ErrorKind] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    """Error kinds that are retried on the same model (every error moves on to the next candidate)."""
    max_models: Annotated[int, Field(ge=1)] = 3
    """How many candidates of the ranking to try at most."""
    timeout_s: Annotated[float, Field(gt=0)] = 60
    circuit_failures: Annotated[int, Field(ge=1)] = 5
    circuit_cooldown_s: Annotated[float, Field(gt=0)] = 30


class GatewayKey(_Strict):
    """One API key of the gateway. Give ``key_sha256`` (hex, hashed at rest) or ``key`` (usually
    ``${ENV_VAR}``), which is hashed when the policy loads and never kept."""

    id: str = Field(min_length=1, description="a name for the key, recorded in the ledger (never the key)")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    allowed_models: list[str] = Field(default_factory=lambda: ["*"], description="model id globs this key may use")
    budget_usd_per_day: Annotated[float, Field(ge=0)] | None = None
    budget_usd_per_month: Annotated[float, Field(ge=0)] | None = None
    pace: Pace | None = Field(default=None, description="pace this key's spend through the day (llm_router.pacing)")
    rpm: Annotated[int, Field(gt=0)] | None = Field(default=None, description="requests per minute (sliding window)")
    tpm: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="tokens per minute (sliding window; prompt + max output held until settled)"
    )
    default_max_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="output cap of this key's requests that send no max_tokens (overrides "
        "gateway.default_max_tokens): sent upstream as the call's max_tokens, so the budget holds it, not the "
        "model's whole max output",
    )

    @property
    def limited(self) -> bool:
        """Whether any budget or rate limit applies to this key."""
        return (
            self.budget_usd_per_day is not None
            or self.budget_usd_per_month is not None
            or self.rpm is not None
            or self.tpm is not None
        )

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_key(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and "key" in value:
            data = dict(value)
            plain = data.pop("key")
            if "key_sha256" in data:
                raise ValueError("give either key or key_sha256, not both")
            if not isinstance(plain, str) or not plain:
                raise ValueError("key must be a non-empty string (is its environment variable set?)")
            data["key_sha256"] = hashlib.sha256(plain.encode()).hexdigest()
            return data
        return value

    @field_validator("key_sha256", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class GatewayPolicy(_Strict):
    """``llm-router serve``: API keys with budgets, the usage ledger, model aliases."""

    keys: list[GatewayKey] = Field(default_factory=list, description="no keys: an open gateway")
    ledger: str = Field(
        default="./llm-router-usage.sqlite3",
        repr=False,  # a postgresql:// URL may hold a password
        description="usage ledger: a SQLite file path, or postgresql://user:password@host:port/db for a fleet",
    )
    ledger_spool: str = Field(
        default=".",
        description="directory where a postgresql:// ledger spools rows while PostgreSQL is unreachable (one "
        "llm-router-ledger-spool-<pid>.jsonl per process, replayed when it is back; relative to the working "
        "directory)",
    )
    ledger_spool_max_mb: Annotated[float, Field(gt=0)] = Field(
        default=256, description="largest spool file of one process, in MiB; rows beyond it are lost and logged"
    )
    default_max_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="output cap of requests that send no max_tokens (a key's own default_max_tokens wins): sent "
        "upstream as the call's max_tokens (within each model's max output), so a budget holds this many output "
        "tokens, not the model's whole max output; none: the model's max output is held",
    )
    log_prompts: bool = Field(default=False, description="log prompt text (off: prompts are never logged)")
    aliases: dict[str, list[str]] = Field(
        default_factory=dict, description="`model` names that route among these model globs (besides `auto`)"
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        description="largest request body accepted, in bytes (default 4 MiB); a larger one is answered 413 before "
        "it is read in full or parsed",
    )
    admin_keys: list[str] = Field(
        default_factory=list,
        description="ids of keys (from `keys`) that may read usage: the dashboard at /dashboard and /v1/usage/*",
    )

    @model_validator(mode="after")
    def _unique(self) -> GatewayPolicy:
        ids = [k.id for k in self.keys]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate key ids: {', '.join(sorted(dup))}")
        hashes = [k.key_sha256 for k in self.keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("two keys have the same secret")
        return self

    @field_validator("admin_keys")
    @classmethod
    def _admins_are_keys(cls, value: list[str], info: ValidationInfo) -> list[str]:
        ids = {k.id for k in info.data.get("keys", [])}
        unknown = [a for a in value if a not in ids]
        if unknown:
            raise ValueError(f"not the id of a key in gateway.keys: {', '.join(unknown)}")
        return value


class DeploymentTarget(_Strict):
    """One provider instance serving a model: its limits and weight."""

    provider: str = Field(description="a provider name of `providers:` (another key, region, base URL or replica)")
    model: str | None = Field(default=None, description="the model's name at that provider (default: the same)")
    rpm: Annotated[int, Field(gt=0)] | None = None
    tpm: Annotated[int, Field(gt=0)] | None = None
    weight: Annotated[float, Field(ge=0)] = Field(default=1.0, description="share for `weighted` (0: standby)")


class ModelDeployments(_Strict):
    """The deployments of one model id and how calls are spread over them."""

    strategy: Literal["least-busy", "latency", "usage", "weighted", "shuffle"] = "least-busy"
    cooldown_s: Annotated[float, Field(ge=0)] = Field(
        default=60, description="how long a deployment rests after a 429 without Retry-After"
    )
    targets: list[DeploymentTarget] = Field(min_length=1)


class StatePolicy(_Strict):
    """Where circuit breakers, live latency, rate windows and budget spend live: ``memory`` (this process,
    the default) or ``redis`` (shared by every gateway instance and worker; see docs/reliability.md)."""

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = Field(default=None, repr=False, description="redis://host:port/db (backend redis)")
    on_outage: Literal["local", "refuse"] = Field(
        default="local",
        description="Redis unreachable: `local` keeps serving on this process's state (budgets are then enforced "
        "per process), `refuse` answers 503 to keys with a budget or rate limit until Redis is back",
    )
    refresh_ms: Annotated[float, Field(gt=0)] = Field(
        default=250, description="how often the local snapshot (circuits, latency, spend) is refreshed from Redis"
    )
    prefix: str = Field(default="llmr", min_length=1, description="prefix of every Redis key")
    hold_s: Annotated[float, Field(gt=0)] = Field(
        default=900, description="a budget reservation whose holder died is released after this long"
    )

    @model_validator(mode="after")
    def _url(self) -> StatePolicy:
        if self.backend == "redis" and not self.url:
            raise ValueError("backend redis needs `url` (redis://host:port/0)")
        return self


class TaxonomySpec(_Strict):
    replace: bool = Field(default=False, description="replace the built-in tasks instead of extending them")
    default_task: str | None = None
    tasks: dict[str, TaskSpec] = Field(default_factory=dict)


DEFAULT_SCORERS = ("quality", "cost", "latency")
DEFAULT_CONSTRAINTS = (
    "providers",
    "capabilities",
    "context_window",
    "cost",
    "latency",
    "quality",
    "health",
    "lifecycle",
)


class Policy(_Strict):
    """The whole routing policy. Every section is optional; see ``docs/policy.md``."""

    version: Literal[1] = 1
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    models: list[ModelSpec] = Field(default_factory=list)
    taxonomy: TaxonomySpec = Field(default_factory=TaxonomySpec)
    classify: list[ComponentSpec] = Field(default_factory=lambda: [ComponentSpec(name="rules")])
    constrain: list[ComponentSpec] = Field(default_factory=lambda: [ComponentSpec(name=n) for n in DEFAULT_CONSTRAINTS])
    score: list[ComponentSpec] = Field(default_factory=lambda: [ComponentSpec(name=n) for n in DEFAULT_SCORERS])
    preferences: Preferences = Field(
        default_factory=lambda: Preferences(weights={"quality": 0.6, "cost": 0.3, "latency": 0.1})
    )
    constraints: Constraints = Field(default_factory=Constraints)
    routes: list[RouteRule] = Field(default_factory=lambda: [RouteRule()])
    fallback: FallbackPolicy = Field(default_factory=FallbackPolicy)
    postprocess: list[ComponentSpec] = Field(default_factory=list)
    gateway: GatewayPolicy = Field(default_factory=GatewayPolicy)
    state: StatePolicy = Field(default_factory=StatePolicy)
    deployments: dict[str, ModelDeployments] = Field(
        default_factory=dict, description="model id → the provider instances that serve it (docs/policy.md)"
    )
    cache: CachePolicy = Field(default_factory=CachePolicy)
    telemetry: TelemetryPolicy = Field(default_factory=TelemetryPolicy)
    experiments: list[Experiment] = Field(default_factory=list, description="A/B tests (docs/experiments.md)")

    def build_taxonomy(self) -> Taxonomy:
        tasks = {} if self.taxonomy.replace else dict(DEFAULT_TASKS)
        tasks.update(self.taxonomy.tasks)
        default = self.taxonomy.default_task or ("chat" if "chat" in tasks else next(iter(tasks), "chat"))
        return Taxonomy(tasks=tasks, default_task=default)


# --------------------------------------------------------------------------------------------------
# Loading with positions
# --------------------------------------------------------------------------------------------------


@dataclass
class SourceMap:
    """Where each value of a policy came from: path → (line, column), 1-based."""

    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, loc: Sequence[str | int]) -> tuple[Path_, tuple[int, int] | None]:
        """The deepest known path along ``loc`` (segments pydantic adds are skipped) and its position."""
        best: Path_ = ()
        current: Path_ = ()
        for segment in loc:
            candidate = (*current, segment)
            if candidate in self.positions:
                current = candidate
                best = current
        return best, self.positions.get(best)

    def issue(self, loc: Sequence[str | int], message: str, *, exact: bool = False) -> PolicyIssue:
        path, pos = self.locate(loc)
        shown = tuple(loc) if exact else _display_loc(loc, path)
        line, col = pos if pos else (None, None)
        return PolicyIssue(self.file, line, col, format_path(shown), message)


def _display_loc(loc: Sequence[str | int], known: Path_) -> Path_:
    """pydantic's location without its internal segments (union branches, wrappers)."""
    out: list[str | int] = []
    for seg in loc:
        if isinstance(seg, str) and (seg in ("weights",) or "[" in seg or seg.startswith("function-")):
            continue
        out.append(seg)
    return tuple(out) if len(out) >= len(known) else known


def format_path(path: Sequence[str | int]) -> str:
    text = ""
    for seg in path:
        text += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if text else str(seg))
    return text


MAX_DEPTH = 64
"""The deepest nesting of lists and mappings a policy may have; an alias counts as the nodes it stands for."""

MAX_ALIAS_NODES = 10_000
"""How many nodes the aliases (``*name``) of a policy may stand for, in all. A YAML "billion laughs" (aliases
of aliases, each level multiplying the size) is refused at the alias that crosses it, before anything is
expanded."""

_YAML_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _YAML_TAG + "merge"
_SCALAR_TAGS = frozenset(_YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_COLLECTION_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: _YAML_TAG + "map",
    yaml.SequenceNode: _YAML_TAG + "seq",
}
_PLAIN_VALUES = "a policy holds plain values: strings, numbers, booleans, null, lists and mappings"


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


class _PolicyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses, while composing (before anything is built), nesting deeper than
    :data:`MAX_DEPTH` and aliases that stand for more than :data:`MAX_ALIAS_NODES` nodes in all."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self._path: list[str | int | None] = []  # segments of the open nodes (None: a mapping key)
        self._weight = 0  # nodes composed so far, each alias counted as the nodes it stands for
        self._expanded = 0  # nodes the aliases stand for, in all
        self._deepest = 0  # the deepest level reached in the node being composed
        self._measured: dict[yaml.Node, tuple[int, int]] = {}  # anchored node → (nodes, height)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.NodeEvent = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        segment = index.value if isinstance(index, yaml.ScalarNode) else index if isinstance(index, int) else None
        depth = len(self._path) + 1
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # raises on an undefined alias
            if node is not None:
                self._alias(node, event, depth, segment)
            return node
        if depth > MAX_DEPTH:
            raise self._refuse(event, segment, f"nested deeper than {MAX_DEPTH} levels of lists and mappings")
        outer_deepest, weight = self._deepest, self._weight
        self._deepest, self._weight = depth, weight + 1
        self._path.append(segment)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path.pop()
        if node is not None and event.anchor is not None:
            self._measured[node] = (self._weight - weight, self._deepest - depth + 1)
        self._deepest = max(outer_deepest, self._deepest)
        return node

    def _alias(self, node: yaml.Node, event: yaml.NodeEvent, depth: int, segment: str | int | None) -> None:
        name = event.anchor
        measured = self._measured.get(node)
        if measured is None:
            raise self._refuse(event, segment, f"alias *{name} is inside the node it names (a recursive structure)")
        size, height = measured
        self._expanded += size
        if self._expanded > MAX_ALIAS_NODES:
            raise self._refuse(
                event,
                segment,
                f"aliases stand for more than {MAX_ALIAS_NODES:,} values in all (*{name} alone stands for "
                f"{size:,}); a policy may not expand aliases beyond that",
            )
        if depth + height - 1 > MAX_DEPTH:
            raise self._refuse(
                event, segment, f"alias *{name} nests the policy deeper than {MAX_DEPTH} levels of lists and mappings"
            )
        self._weight += size
        self._deepest = max(self._deepest, depth + height - 1)

    def _refuse(self, event: yaml.Event, segment: str | int | None, message: str) -> PolicyError:
        field = format_path([s for s in (*self._path, segment) if s is not None])
        if len(field) > 60:
            field = field[:57] + "..."
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        return PolicyError([PolicyIssue(self.file, line, col, field, message)])


class _Builder:
    """Plain data from the composed YAML nodes, recording the position of each value and every problem."""

    def __init__(self, loader: yaml.SafeLoader, source: SourceMap, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.source = source
        self.env = env
        self.issues: list[PolicyIssue] = []

    def pos(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def issue(self, node: yaml.Node, path: Path_, message: str) -> None:
        self.issues.append(PolicyIssue(self.source.file, *self.pos(node), format_path(path), message))

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag != _COLLECTION_TAGS.get(type(node)):
            self.issue(node, path, f"unsupported YAML tag {_tag_name(node.tag)!r} ({_PLAIN_VALUES})")
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        items = []
        for i, item in enumerate(node.value):
            self.source.positions[(*path, i)] = self.pos(item)
            items.append(self.build(item, (*path, i)))
        return items

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.merge(value_node, path, out)
        merged = set(out)  # keys from `<<: *anchor`, which the mapping's own keys override
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in out and key not in merged:
                first = self.source.positions.get(child, (None, None))[0]
                self.issue(key_node, child, f"duplicate key {key!r} (first defined on line {first})")
                continue
            merged.discard(key)
            self.source.positions[child] = self.pos(key_node)
            out[key] = self.build(value_node, child)
        return out

    def merge(self, node: yaml.Node, path: Path_, out: dict[Any, Any]) -> None:
        """``<<: *anchor`` or ``<<: [*a, *b]``: the keys of those mappings (the first one listed wins)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.issue(source, path, "`<<` merges a mapping or a list of mappings (write `<<: *name`)")
                continue
            out.update(self.build(source, path) or {})

    def key(self, node: yaml.Node, path: Path_) -> str | int | None:
        if not isinstance(node, yaml.ScalarNode):
            what = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            self.issue(node, path, f"keys must be strings, got a {what}")
            return None
        ok, key = self.construct(node, path)
        if isinstance(key, bool):
            key = node.value  # YAML 1.1 reads `on:` / `yes:` keys as booleans; keep the text
        if ok and not isinstance(key, str | int):
            self.issue(node, path, f"keys must be strings, got {key!r}")
        return key if ok and isinstance(key, str | int) else None

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        _, value = self.construct(node, path)
        if isinstance(value, str) and "${" in value:
            value = self.expand(value, node, path)
        return value

    def construct(self, node: yaml.ScalarNode, path: Path_) -> tuple[bool, Any]:
        """``(True, value)``, or ``(False, None)`` with the problem recorded."""
        if node.tag == _MERGE_TAG:
            return True, node.value  # a plain `<<` that is not a key is just text
        if node.tag not in _SCALAR_TAGS:
            self.issue(node, path, f"unsupported YAML tag {_tag_name(node.tag)!r} ({_PLAIN_VALUES})")
            return False, None
        try:
            return True, self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, KeyError, AttributeError) as exc:
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            reason = ""
            if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
                reason = f": {exc.problem}"
            elif isinstance(exc, ValueError):  # e.g. an integer of more than 4300 digits
                reason = f": {str(exc).split(';')[0]}"
            self.issue(node, path, f"cannot read {shown!r} as {_tag_name(node.tag)}{reason}")
            return False, None

    def expand(self, value: str, node: yaml.Node, path: Path_) -> str:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.issue(node, path, f"environment variable {name} is not set (set it, or write ${{{name}:-default}})")
            return ""

        return _ENV.sub(sub, value)


def _reader_issue(text: str, file: str, exc: yaml.reader.ReaderError) -> PolicyIssue:
    """A character YAML does not allow (NUL, other control characters)."""
    line, col = _line_col(text, exc.position)
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
    what = "a NUL byte (U+0000)" if code == 0 else f"the control character U+{code:04X}"
    return PolicyIssue(file, line, col, "", f"the file contains {what}, which YAML does not allow (is it a text file?)")


def _yaml_data(text: str, source: SourceMap, env: Mapping[str, str]) -> Any:
    """The policy text as plain data (``{}`` when empty); :class:`PolicyError` for any YAML problem."""
    file = source.file
    try:
        loader = _PolicyLoader(text, file)
    except yaml.reader.ReaderError as exc:
        raise PolicyError([_reader_issue(text, file, exc)]) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.reader.ReaderError as exc:
            raise PolicyError([_reader_issue(text, file, exc)]) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            raise PolicyError([PolicyIssue(file, line, col, "", f"YAML syntax error: {problem}")]) from None
        except yaml.YAMLError as exc:
            raise PolicyError([PolicyIssue(file, None, None, "", f"YAML error: {exc}")]) from None
        builder = _Builder(loader, source, env)
        data = {} if root is None else builder.build(root, ())
    finally:
        loader.dispose()
    if builder.issues:
        raise PolicyError(builder.issues)
    return data


def parse_policy(text: str, file: str = "<policy>", env: Mapping[str, str] | None = None) -> tuple[Policy, SourceMap]:
    """Parse and validate policy text. Raises :class:`PolicyError` listing every problem found."""
    source = SourceMap(file)
    data = _yaml_data(text, source, os.environ if env is None else env)
    if not isinstance(data, dict):
        raise PolicyError([PolicyIssue(file, 1, 1, "", f"a policy is a mapping, got {type(data).__name__}")])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(issues_from_validation(exc, source)) from None
    return policy, source


def issues_from_validation(exc: ValidationError, source: SourceMap, prefix: Path_ = ()) -> list[PolicyIssue]:
    issues = []
    for err in exc.errors(include_url=False):
        loc = (*prefix, *err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "missing":
            message = f"required field {loc[-1]!r} is missing"
        elif "input" in err and err["type"] not in ("model_attributes_type",):
            shown = repr(err["input"])
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message += f" (got {shown})"
        issues.append(source.issue(loc, message))
    return issues


def load_policy(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> tuple[Policy, SourceMap]:
    """Read and validate a policy file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyError([PolicyIssue(str(p), None, None, "", f"cannot read policy file: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[start : exc.start].decode("utf-8", errors="replace")) + 1
        message = f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded (save it as UTF-8)"
        raise PolicyError([PolicyIssue(str(p), line, col, "", message)]) from None
    return parse_policy(text, str(p), env)


def default_policy_text() -> str:
    return resources.files("llm_router").joinpath("data/default_policy.yaml").read_text(encoding="utf-8")


def load_default_policy() -> tuple[Policy, SourceMap]:
    """The built-in policy that ``Router()`` uses. It names no secret: provider plugins read their SDK's
    usual environment variables (``OPENAI_API_KEY``, …) and say which one to set when it is missing."""
    return parse_policy(default_policy_text(), "<default policy>", {})


def policy_json_schema(component_configs: Mapping[str, Mapping[str, type[BaseModel]]] | None = None) -> dict[str, Any]:
    """The JSON Schema of the policy, with each registered component's parameters where known.

    :param component_configs: kind → name → Config model (``classifier``, ``scorer``, ``constraint``,
        ``postprocessor``, ``provider``).
    """
    schema = Policy.model_json_schema()
    schema["title"] = "llm-router routing policy"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    if not component_configs:
        return schema
    defs = schema.setdefault("$defs", {})
    section_kind = {
        "classify": "classifier",
        "score": "scorer",
        "constrain": "constraint",
        "postprocess": "postprocessor",
    }
    for section, kind in section_kind.items():
        configs = component_configs.get(kind, {})
        if not configs:
            continue
        variants: list[dict[str, Any]] = [{"type": "string", "enum": sorted(configs)}]
        for name, model in sorted(configs.items()):
            sub = model.model_json_schema(ref_template="#/$defs/{model}")
            for key, value in sub.pop("$defs", {}).items():
                defs.setdefault(key, value)
            variants.append(
                {
                    "type": "object",
                    "properties": {name: {"anyOf": [sub, {"type": "null"}]}},
                    "required": [name],
                    "additionalProperties": False,
                }
            )
        schema["properties"][section] = {"type": "array", "items": {"anyOf": variants}}
    providers = component_configs.get("provider", {})
    if providers:
        _provider_schemas(schema, defs, providers)
    return schema


def _provider_schemas(schema: dict[str, Any], defs: dict[str, Any], providers: Mapping[str, type[BaseModel]]) -> None:
    """Each provider type's parameters (with their defaults) in ``providers``: an entry is one of the types'
    objects (``type`` names it); an entry whose key is a type's name (``openai:``) may leave ``type`` out."""
    variants: dict[str, dict[str, Any]] = {}
    for name, model in sorted(providers.items()):
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        for key, value in sub.pop("$defs", {}).items():
            defs.setdefault(key, value)
        sub["properties"] = {
            "type": {"const": name, "description": "the provider type (default: the entry's key)"},
            "package": {"type": "string", "description": "the distribution that provides this type (for hints)"},
            "if_not_installed": {
                "type": "object",
                "description": "another entry (type, package, parameters) used when this type is not installed",
            },
            **sub.get("properties", {}),
        }
        sub["additionalProperties"] = False
        variants[name] = sub
    entry = schema["properties"]["providers"]
    typed = {"type": "object", "required": ["type"], "anyOf": list(variants.values())}
    entry["additionalProperties"] = typed
    entry["properties"] = {name: {"anyOf": [sub, typed]} for name, sub in variants.items()}


def iter_model_refs(policy: Policy) -> Iterable[tuple[Path_, str]]:
    """Every model id or pattern the policy mentions, with its path (for validation against the catalogue)."""
    for i, rule in enumerate(policy.routes):
        if isinstance(rule.models, list):
            for j, ref in enumerate(rule.models):
                yield ("routes", i, "models", j), ref
    for name in ("allowed_models", "blocked_models"):
        values = getattr(policy.constraints, name)
        for ref in sorted(values or ()):
            yield ("constraints", name), ref
    for i, exp in enumerate(policy.experiments):
        for vname, variant in exp.variants.items():
            for j, rule in enumerate(variant.routes or ()):
                if isinstance(rule.models, list):
                    for k, ref in enumerate(rule.models):
                        yield ("experiments", i, "variants", vname, "routes", j, "models", k), ref
