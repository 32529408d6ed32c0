"""Finding, loading and isolating plugins; the registry of the components they register.

One :class:`PluginHost` per :class:`~llm_router.Router` (no module-global plugin manager). It loads every
entry point of the ``llm_router`` group on its own, so that one broken plugin is recorded (name,
distribution, version, error) and the rest keep working. Entry points of the core distribution itself are
essential: they load even when autoloading is off or they are named in the block list.

Environment switches (each also a keyword of :class:`PluginHost` / :class:`~llm_router.Router`):

``LLM_ROUTER_STRICT_PLUGINS=1``
    any plugin failure (import, registration, misspelled hook, raising event hook) raises.
``LLM_ROUTER_BLOCK_PLUGINS=name,other``
    entry-point names not to load.
``LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD=1``
    load only the core's own (essential) entry points and plugins passed explicitly.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import inspect
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from . import hookspecs
from .components import COMPONENT_KINDS, Component
from .errors import DuplicateComponentError, FeedbackError, PluginError

if TYPE_CHECKING:
    from .commands import CommandGroups

__all__ = ["ENTRY_POINT_GROUP", "ComponentRegistry", "PluginHost", "PluginRecord"]

log = logging.getLogger("llm_router.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
CORE_DISTRIBUTION = "llm-router"

REGISTRATION_HOOKS: dict[str, str] = {
    "register_providers": "provider",
    "register_classifiers": "classifier",
    "register_scorers": "scorer",
    "register_constraints": "constraint",
    "register_postprocessors": "postprocessor",
}
EVENT_HOOKS = ("on_decision", "on_result", "on_error", "on_feedback")
OTHER_HOOKS = ("register_commands", "register_embedders")

Status = Literal["loaded", "failed", "blocked", "disabled"]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class PluginRecord:
    """What happened to one plugin."""

    name: str
    distribution: str | None
    version: str | None
    status: Status
    essential: bool = False
    error: str | None = None
    components: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "essential": self.essential,
            "error": self.error,
            "components": sorted(self.components),
            "hooks": sorted(self.hooks),
        }


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    cls: type[Component]
    plugin: str


class ComponentRegistry:
    """Component classes by kind and name, with the plugin that registered each."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Registration]] = {kind: {} for kind in COMPONENT_KINDS}

    def add(self, registration: Registration) -> None:
        table = self._by_kind[registration.kind]
        existing = table.get(registration.name)
        if existing is not None and existing.cls is not registration.cls:
            raise DuplicateComponentError(
                f"{registration.kind} {registration.name!r} is registered twice: by plugin "
                f"{existing.plugin!r} ({existing.cls.__module__}.{existing.cls.__qualname__}) and by plugin "
                f"{registration.plugin!r} ({registration.cls.__module__}.{registration.cls.__qualname__})"
            )
        table[registration.name] = registration

    def get(self, kind: str, name: str) -> Registration | None:
        return self._by_kind[kind].get(name)

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def all(self) -> Iterable[Registration]:
        for table in self._by_kind.values():
            yield from table.values()


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _dist_of(ep: md.EntryPoint, seen: dict[int, tuple[str | None, str | None]]) -> tuple[str | None, str | None]:
    """The name and version of the distribution that declares ``ep``. Each read of a distribution's metadata
    parses its whole METADATA file (the core's holds its README), so it is read once per distribution."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    found = seen.get(id(dist))
    if found is None:
        meta = dist.metadata
        found = seen[id(dist)] = (meta["Name"], meta["Version"])
    return found


class PluginHost:
    """Loads plugins and keeps their components and event hooks.

    :param extra_plugins: plugin objects (modules, instances) to register besides the entry points; each is
        named by its ``__name__`` or class name.
    :param autoload: load third-party entry points (default: unless ``LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD``).
    :param strict: raise on any plugin failure (default: ``LLM_ROUTER_STRICT_PLUGINS``).
    :param block: entry-point names not to load (default: ``LLM_ROUTER_BLOCK_PLUGINS``).
    """

    def __init__(
        self,
        extra_plugins: Sequence[object] = (),
        *,
        autoload: bool | None = None,
        strict: bool | None = None,
        block: Iterable[str] | None = None,
    ) -> None:
        env = os.environ
        self.strict = _truthy(env.get("LLM_ROUTER_STRICT_PLUGINS")) if strict is None else strict
        self.autoload = (not _truthy(env.get("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD"))) if autoload is None else autoload
        if block is None:
            block = [b.strip() for b in env.get("LLM_ROUTER_BLOCK_PLUGINS", "").split(",") if b.strip()]
        self.block = frozenset(block)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: list[PluginRecord] = []
        self.registry = ComponentRegistry()
        self._record_of: dict[str, PluginRecord] = {}
        self._load_entry_points()
        for plugin in extra_plugins:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            self._register_object(plugin, PluginRecord(name, None, None, "loaded"))
        self._check_pending()
        self._collect_components()
        self._events: dict[str, list[tuple[str, Callable[..., Any]]]] = {
            hook: [
                (impl.plugin_name, impl.function)
                for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls())
                if self._loaded(impl.plugin_name)
            ]
            for hook in EVENT_HOOKS
        }

    # ----------------------------------------------------------------------------------------------
    # loading

    def _fail(self, record: PluginRecord, error: BaseException | str, *, during: str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        record.status = "failed"
        record.error = f"{during}: {message}"
        dist = f" (distribution {record.distribution} {record.version})" if record.distribution else ""
        if self.strict:
            cls = DuplicateComponentError if isinstance(error, DuplicateComponentError) else PluginError
            raise cls(f"plugin {record.name!r}{dist} failed while {record.error}") from (
                error if isinstance(error, BaseException) else None
            )
        log.warning("plugin %r%s failed while %s", record.name, dist, record.error)
        if isinstance(error, BaseException):
            log.debug("".join(traceback.format_exception(error)))

    def _load_entry_points(self) -> None:
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
        seen: set[tuple[str, str]] = set()
        dists: dict[int, tuple[str | None, str | None]] = {}
        for ep in eps:
            if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            dist, version = _dist_of(ep, dists)
            essential = dist == CORE_DISTRIBUTION
            record = PluginRecord(ep.name, dist, version, "loaded", essential=essential)
            self.records.append(record)
            if not essential and ep.name in self.block:
                record.status = "blocked"
                continue
            if not essential and not self.autoload:
                record.status = "disabled"
                continue
            if ep.name in self._record_of:
                self._fail(record, f"another plugin is already registered as {ep.name!r}", during="registering")
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(record, exc, during=f"importing {ep.value}")
                continue
            self._register_object(plugin, record, append=False)

    def _register_object(self, plugin: object, record: PluginRecord, *, append: bool = True) -> None:
        if append:
            self.records.append(record)
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            self._fail(record, exc, during="registering hooks")
            return
        self._record_of[record.name] = record
        record.hooks = [hook.name for hook in self.pm.get_hookcallers(plugin) or ()]

    def _check_pending(self) -> None:
        """Catch misspelled hook implementations (``register_scorer`` for ``register_scorers``)."""
        known = [*REGISTRATION_HOOKS, *OTHER_HOOKS, *EVENT_HOOKS]
        for name in dir(self.pm.hook):
            if name.startswith("_"):
                continue
            caller = getattr(self.pm.hook, name)
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if getattr(impl, "optionalhook", False):
                    continue
                hint = difflib.get_close_matches(name, known, n=1)
                hint_text = f"; did you mean {hint[0]!r}?" if hint else ""
                record = self._record_of.get(impl.plugin_name)
                msg = f"unknown hook {name!r} (known hooks: {', '.join(known)}){hint_text}"
                self.pm.unregister(name=impl.plugin_name)
                if record is None:  # pragma: no cover - every plugin has a record
                    raise PluginError(f"plugin {impl.plugin_name!r}: {msg}")
                del self._record_of[impl.plugin_name]
                self._fail(record, msg, during="checking hook names")
        self.pm.check_pending()

    def _collect_components(self) -> None:
        """Each loaded plugin's components, all or none: a plugin whose registration hook raises, or that
        registers a kind and name another plugin already has, is failed and registers nothing. The core's
        (essential) plugins go first, so their components keep their names; then the others in load order."""
        impls: dict[str, list[tuple[str, str, pluggy.HookImpl]]] = {}
        for hook_name, kind in REGISTRATION_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                impls.setdefault(impl.plugin_name, []).append((hook_name, kind, impl))
        for record in sorted(self.records, key=lambda r: not r.essential):  # stable: load order otherwise
            if record.status == "loaded" and record.name in impls and self._record_of.get(record.name) is record:
                self._register_components(record, impls[record.name])

    def _register_components(self, record: PluginRecord, impls: list[tuple[str, str, pluggy.HookImpl]]) -> None:
        pending: list[Registration] = []
        for hook_name, kind, impl in impls:
            try:
                impl.function(register=self._registrar(record.name, kind, pending))
            except Exception as exc:
                self._fail(record, exc, during=f"calling {hook_name}")
                return
        conflict = self._conflict(record, pending)
        if conflict is not None:
            self._fail(record, DuplicateComponentError(conflict), during="registering components")
            return
        for registration in pending:
            self.registry.add(registration)
            record.components.append(f"{registration.kind}:{registration.name}")

    @staticmethod
    def _registrar(plugin: str, kind: str, pending: list[Registration]) -> Callable[..., None]:
        """The ``register`` callback a plugin's ``register_<kind>s`` hook receives."""
        base = COMPONENT_KINDS[kind]

        def register(cls: type[Component], name: str | None = None) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(
                    f"plugin {plugin!r} registered {cls!r} as a {kind}, "
                    f"but it is not a subclass of llm_router.{base.__name__}"
                )
            component_name = name or cls.name
            if not component_name:
                raise PluginError(f"plugin {plugin!r} registered {cls.__qualname__} without a name")
            pending.append(Registration(kind, component_name, cls, plugin))

        return register

    def _conflict(self, record: PluginRecord, pending: list[Registration]) -> str | None:
        """Why ``record``'s registrations cannot be added (a kind and name already taken), or ``None``."""
        seen: dict[tuple[str, str], Registration] = {}
        for new in pending:
            old = seen.get((new.kind, new.name)) or self.registry.get(new.kind, new.name)
            seen[(new.kind, new.name)] = new
            if old is None or old.cls is new.cls:
                continue
            if old.plugin == new.plugin:
                classes = f"{_qualified(old.cls)} and {_qualified(new.cls)}"
                return f"plugin {record.name!r} registers two classes as {new.kind} {new.name!r}: {classes}"
            return (
                f"{new.kind} {new.name!r} is already registered by plugin {old.plugin!r} "
                f"({self._describe(old.plugin)}{_qualified(old.cls)}); plugin {record.name!r} "
                f"({self._describe(record.name)}{_qualified(new.cls)}) registers another class under that name, "
                "so none of its components is registered"
            )
        return None

    def _describe(self, plugin: str) -> str:
        record = self._record_of.get(plugin)
        if record is None or record.distribution is None:
            return ""
        return f"distribution {record.distribution} {record.version}: "

    # ----------------------------------------------------------------------------------------------
    # queries

    def failures(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status == "failed"]

    def component(self, kind: str, name: str) -> type[Component]:
        """The class registered as ``name`` for ``kind``; a clear error when there is none."""
        registration = self.registry.get(kind, name)
        if registration is not None:
            return registration.cls
        raise PluginError(self.missing_component_message(kind, name))

    def missing_component_message(self, kind: str, name: str) -> str:
        names = self.registry.names(kind)
        msg = f"unknown {kind} {name!r}; available: {', '.join(names) or 'none'}"
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        failed = self.failures()
        if failed:
            msg += "; plugins that failed to load: " + "; ".join(
                f"{r.name} ({r.distribution or 'no distribution'}): {r.error}" for r in failed
            )
        blocked = [r.name for r in self.records if r.status in ("blocked", "disabled")]
        if blocked:
            msg += f"; plugins not loaded (blocked or autoload off): {', '.join(blocked)}"
        return msg

    def _loaded(self, plugin: str) -> bool:
        record = self._record_of.get(plugin)
        return record is not None and record.status == "loaded"

    def add_commands(self, cli: CommandGroups) -> None:
        """Let every plugin add its commands to the command line's groups (``register_commands``)."""
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            record = self._record_of.get(impl.plugin_name)
            if record is None or record.status != "loaded":
                continue
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._fail(record, exc, during="calling register_commands")

    def embedders(self) -> dict[str, tuple[str, Callable[[int], Callable[..., Any]]]]:
        """Every embedding back-end the plugins register (``register_embedders``): name → (plugin, factory)."""
        found: dict[str, tuple[str, Callable[[int], Callable[..., Any]]]] = {}
        for impl in reversed(self.pm.hook.register_embedders.get_hookimpls()):
            if not self._loaded(impl.plugin_name):
                continue

            def register(
                name: str, factory: Callable[[int], Callable[..., Any]], _plugin: str = impl.plugin_name
            ) -> None:
                if name in found:
                    first = found[name][0]
                    log.warning("embedder %r of plugin %r ignored: plugin %r registered it first", name, _plugin, first)
                    return
                found[name] = (_plugin, factory)

            try:
                impl.function(register=register)
            except Exception as exc:
                record = self._record_of.get(impl.plugin_name)
                if record is not None:
                    self._fail(record, exc, during="calling register_embedders")
        return found

    # ----------------------------------------------------------------------------------------------
    # events

    def add_listener(self, listener: object, name: str) -> bool:
        """Register the event hooks (``@hookimpl`` methods such as ``on_decision``, ``on_feedback``) of one
        component instance, for this host only (a learning scorer hears its own router's events). Returns
        whether ``listener`` has any; it is not listed among the plugins."""
        marker = f"{hookspecs.PROJECT_NAME}_impl"
        hooks = [h for h in EVENT_HOOKS if hasattr(getattr(type(listener), h, None), marker)]
        if not hooks:
            return False
        self.pm.register(listener, name=name)
        for hook in hooks:
            self._events[hook] += [
                (name, i.function) for i in getattr(self.pm.hook, hook).get_hookimpls() if i.plugin_name == name
            ]
        return True

    def has_listeners(self, hook: str) -> bool:
        return bool(self._events[hook])

    def emit(self, hook: str, **kwargs: Any) -> list[Awaitable[Any]]:
        """Call every implementation of event ``hook``; return the awaitables some of them returned.

        An implementation that raises is logged with its plugin's name (raised in strict mode).
        """
        pending: list[Awaitable[Any]] = []
        for plugin_name, function in self._events[hook]:
            try:
                out = function(**kwargs)
            except Exception as exc:
                self._event_failed(plugin_name, hook, exc)
                continue
            if inspect.isawaitable(out):
                pending.append(self._guard(plugin_name, hook, out))
        return pending

    async def _guard(self, plugin_name: str, hook: str, awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except Exception as exc:
            self._event_failed(plugin_name, hook, exc)

    def _event_failed(self, plugin_name: str, hook: str, exc: Exception) -> None:
        if isinstance(exc, FeedbackError):  # the feedback was refused: the caller must hear it
            raise exc
        if self.strict:
            raise PluginError(f"plugin {plugin_name!r} raised in {hook}: {type(exc).__name__}: {exc}") from exc
        log.error("plugin %r raised in %s: %s: %s", plugin_name, hook, type(exc).__name__, exc, exc_info=exc)
