"""Assembly: policy → components, once, when a Router starts.

Every problem found on the way is collected with its file:line and field, and reported together as one
:class:`~llm_router.errors.PolicyError`. Problems that need not stop the router (a provider type that is not
installed, a provider whose model listing failed) are kept as reasons and warnings instead.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .catalogue import Catalogue
from .components import ComponentContext, Constraint, PostProcessor, Provider, Scorer
from .decision import CompiledRoute, Stage
from .errors import PolicyIssue, RouterError
from .model_lifecycle import lifecycle_warnings
from .plugins import PluginHost
from .policy import ComponentSpec, Policy, ProviderSpec, SourceMap, issues_from_validation, iter_model_refs
from .state import StateStore
from .taxonomy import Taxonomy
from .types import CompletionRequest, CompletionResponse, ModelInfo, Preferences

RULES_BEFORE_LEARNER = 0.9
"""The ``rules`` stage's threshold in the default cascade of a policy with its own labels (as in
``examples/policies/hybrid_classify.yaml``): rules decide only when confident, the learner otherwise."""

__all__ = ["Assembly"]

log = logging.getLogger("llm_router")

COLLECTED = "llm_router_collected"
"""A log record carrying this attribute (``extra={COLLECTED: True}``) repeats a message that is also in
``Router.warnings``: a face that prints those warnings itself (``llm-router policy validate``) drops such
records so that each warning shows once."""

Complete = Callable[[str, CompletionRequest], Awaitable[CompletionResponse]]


class Assembly:
    """The components a policy asks for, built and checked.

    :ivar providers: provider instances by their name in the policy.
    :ivar provider_problems: why a declared provider has no instance (its plugin is not installed).
    :ivar warnings: problems that do not stop the router (a provider whose ``models()`` raised).
    :ivar issues: policy problems; the Router raises them together.
    """

    def __init__(
        self,
        policy: Policy,
        source: SourceMap,
        policy_dir: Path,
        plugins: PluginHost,
        state: StateStore,
        complete: Complete,
    ) -> None:
        self.policy, self.source, self.policy_dir, self.plugins = policy, source, policy_dir, plugins
        self.state, self.complete = state, complete
        self.taxonomy: Taxonomy = policy.build_taxonomy()
        self.issues: list[PolicyIssue] = []
        self.warnings: list[str] = []
        self.providers: dict[str, Provider] = {}
        self.provider_problems: dict[str, str] = {}
        self._listing_failed: dict[str, str] = {}
        self._build_providers()
        self.catalogue = self._build_catalogue()
        self.stages = self._build_stages()
        self.variant_stages = self._build_variant_stages()
        self.constraints: list[tuple[str, Constraint]] = self._build_list("constrain", "constraint")
        self.scorers: list[tuple[str, Scorer]] = self._build_list("score", "scorer")
        self.postprocessors: list[tuple[str, PostProcessor]] = self._build_list("postprocess", "postprocessor")
        self.routes = self._build_routes()
        self._check_deployments()
        self._check_model_refs()
        self._check_tasks_and_weights()
        self._warn_lifecycle()

    def context(self, name: str) -> ComponentContext:
        return ComponentContext(
            name=name, policy_dir=self.policy_dir, taxonomy=self.taxonomy, state=self.state, complete=self.complete
        )

    # ----------------------------------------------------------------------------------------------
    # components

    def _instantiate(
        self, kind: str, spec: ComponentSpec, path: tuple[str | int, ...], params: Mapping[str, Any]
    ) -> Any:
        registration = self.plugins.registry.get(kind, spec.name)
        if registration is None:
            self.issues.append(self.source.issue(path, self.plugins.missing_component_message(kind, spec.name)))
            return None
        try:
            config = registration.cls.Config.model_validate(dict(params))
        except ValidationError as exc:
            self.issues.extend(issues_from_validation(exc, self.source, (*path, spec.name)))
            return None
        try:
            return registration.cls(config, self.context(spec.name))
        except (RouterError, ValueError, OSError) as exc:
            message = f"{kind} {spec.name!r} could not start: {exc}"
        except Exception as exc:
            message = (
                f"{kind} {spec.name!r} (plugin {registration.plugin!r}) raised while starting: "
                f"{type(exc).__name__}: {exc}"
            )
        self.issues.append(self.source.issue((*path, spec.name), message))
        return None

    def _classify_specs(self) -> list[ComponentSpec]:
        """The policy's ``classify:`` list. Without one, a policy whose taxonomy has labels of its own gets
        ``rules`` (deciding when confident) then an installed stage that learns the taxonomy
        (:attr:`Classifier.learns_taxonomy`, e.g. ``fewshot``), when there is one."""
        policy = self.policy
        if "classify" in policy.model_fields_set or not policy.taxonomy.tasks or len(self.taxonomy.tasks) < 2:
            return policy.classify
        learners = sorted(
            (
                r
                for r in self.plugins.registry.all()
                if r.kind == "classifier" and getattr(r.cls, "learns_taxonomy", False)
            ),
            key=lambda r: r.name,
        )
        if not learners:
            return policy.classify
        chosen = learners[0]
        self.warnings.append(
            f"classify: not set; the taxonomy's own labels are classified by rules (when confident), then "
            f"{chosen.name!r} (plugin {chosen.plugin!r}); set `classify:` to choose"
        )
        rules = ComponentSpec(name="rules", params={"threshold": RULES_BEFORE_LEARNER})
        return [rules, ComponentSpec(name=chosen.name)]

    def _build_stages(self) -> list[Stage]:
        specs = self._classify_specs()
        out = self._stages_from(specs, ("classify",), default_learner=specs is not self.policy.classify)
        if not self.policy.classify:
            self.issues.append(self.source.issue(("classify",), "at least one classifier is needed"))
        return out

    def _build_variant_stages(self) -> dict[tuple[str, str], list[Stage]]:
        """The cascades of the experiments' variants that replace the policy's (``variants.<name>.classify``)."""
        out: dict[tuple[str, str], list[Stage]] = {}
        for e, exp in enumerate(self.policy.experiments):
            for name, variant in exp.variants.items():
                if variant.classify is None:
                    continue
                path = ("experiments", e, "variants", name, "classify")
                if not variant.classify:
                    self.issues.append(self.source.issue(path, "at least one classifier is needed"))
                    continue
                out[exp.name, name] = self._stages_from(variant.classify, path, default_learner=False)
        return out

    def _stages_from(
        self, specs: list[ComponentSpec], path: tuple[str | int, ...], *, default_learner: bool
    ) -> list[Stage]:
        """The stages of a ``classify:`` list at ``path`` (``default_learner``: the list is the default one, whose
        learner's failure is only a warning)."""
        out = []
        for i, spec in enumerate(specs):
            params = dict(spec.params)
            threshold = params.pop("threshold", 0.0)
            if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
                self.issues.append(
                    self.source.issue(
                        (*path, i, spec.name, "threshold"),
                        f"threshold must be a number in [0, 1] (got {threshold!r})",
                    )
                )
                continue
            before = len(self.issues)
            classifier = self._instantiate("classifier", spec, (*path, i), params)
            if classifier is not None:
                out.append(Stage(spec.name, classifier, float(threshold)))
            elif default_learner and i > 0:
                # the default learner the policy did not ask for: its failure is a warning, rules still decide
                self.warnings.extend(f"classify: default stage off: {issue.message}" for issue in self.issues[before:])
                del self.issues[before:]
        return out

    def _build_list(self, section: str, kind: str) -> list[tuple[str, Any]]:
        out = []
        specs: list[ComponentSpec] = getattr(self.policy, section)
        for i, spec in enumerate(specs):
            component = self._instantiate(kind, spec, (section, i), spec.params)
            if component is not None:
                out.append((spec.name, component))
        return out

    def _build_providers(self) -> None:
        for name, entry in self.policy.providers.items():
            spec = entry
            type_name = spec.type or name
            registration = self.plugins.registry.get("provider", type_name)
            if registration is None and entry.if_not_installed is not None:
                spec = ProviderSpec.model_validate(entry.if_not_installed)
                type_name = spec.type or name
                registration = self.plugins.registry.get("provider", type_name)
            if registration is None:
                hint = f"pip install {spec.package}" if spec.package else "install the plugin that provides it"
                if spec is not entry:
                    first = f"pip install {entry.package}" if entry.package else "install the plugin that provides it"
                    hint = f"{first}; nor is its alternative {type_name!r}: {hint}"
                    type_name = entry.type or name
                failed = self.plugins.failures()
                extra = "; failed plugins: " + "; ".join(f"{r.name}: {r.error}" for r in failed) if failed else ""
                self.provider_problems[name] = f"provider type {type_name!r} is not installed ({hint}){extra}"
                continue
            try:
                config = registration.cls.Config.model_validate(spec.params())
            except ValidationError as exc:
                self.issues.extend(issues_from_validation(exc, self.source, ("providers", name)))
                continue
            try:
                provider = registration.cls(config, self.context(name))
            except Exception as exc:
                self.issues.append(
                    self.source.issue(
                        ("providers", name),
                        f"provider {name!r} ({type_name}) could not start: {type(exc).__name__}: {exc}",
                    )
                )
                continue
            assert isinstance(provider, Provider)
            self.providers[name] = provider

    # ----------------------------------------------------------------------------------------------
    # catalogue and routes

    def _build_catalogue(self) -> Catalogue:
        catalogue = Catalogue.builtin()
        for name, provider in self.providers.items():
            for model in self._listed_models(name, provider):
                catalogue.add(
                    model
                    if model.provider == name
                    else model.model_copy(update={"provider": name, "id": f"{name}/{model.model}"})
                )
        for i, spec in enumerate(self.policy.models):
            fields = spec.model_dump(exclude_unset=True, exclude={"id", "enabled", "price"})
            if spec.price is not None:
                fields["price"] = spec.price.model_dump()
            if not spec.enabled:
                catalogue.remove(spec.id)
                continue
            try:
                if spec.id in catalogue:
                    catalogue.override(spec.id, **fields)
                else:
                    provider_name, _, model_name = spec.id.partition("/")
                    fields.setdefault("provider", provider_name)
                    fields.setdefault("model", model_name)
                    catalogue.add(ModelInfo.model_validate({"id": spec.id, **fields}))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    msg = f"a new model needs {err['loc'][-1]!r}" if err["type"] == "missing" else err["msg"]
                    self.issues.append(self.source.issue(("models", i, *err["loc"]), msg))
        declared = set(self.policy.providers)
        if declared:
            for model in list(catalogue):
                if model.provider not in declared:
                    catalogue.remove(model.id)
        return catalogue

    def _listed_models(self, name: str, provider: Provider) -> list[ModelInfo]:
        """The models ``provider`` contributes; none (with a warning) when its ``models()`` raises or returns
        something that is not a model: that provider's own models are lost, the router starts."""
        try:
            listed = list(provider.models())
            bad = [m for m in listed if not isinstance(m, ModelInfo)]
            if bad:
                raise TypeError(f"models() returned {type(bad[0]).__name__}, not llm_router.ModelInfo")
        except Exception as exc:
            reason = f"listing its models failed ({type(exc).__name__}: {exc}); its own models are left out"
            self._listing_failed[name] = reason
            self.warnings.append(f"provider {name!r}: {reason}")
            log.warning("provider %r: %s", name, reason, extra={COLLECTED: True})
            return []
        return listed

    def _build_routes(self) -> list[CompiledRoute]:
        routes = []
        for i, rule in enumerate(self.policy.routes):
            label = rule.name or (
                f"routes[{i}]" if rule.when.task is None else f"routes[{i}] (task {', '.join(rule.when.task)})"
            )
            models = list(self.catalogue) if rule.models == "*" else self.catalogue.match(rule.models)
            routes.append(CompiledRoute(label, rule, models))
        return routes

    # ----------------------------------------------------------------------------------------------
    # cross-references

    def _check_model_refs(self) -> None:
        ids = self.catalogue.ids()
        for path, ref in iter_model_refs(self.policy):
            if ref in self.catalogue or any(fnmatch.fnmatchcase(i, ref) for i in ids):
                continue
            listing = self._listing_failed.get(ref.partition("/")[0])
            if listing is not None:
                hint = f"; provider {ref.partition('/')[0]!r}: {listing}"
            else:
                close = difflib.get_close_matches(ref, ids, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else "; `llm-router models` lists them"
            self.issues.append(self.source.issue(path, f"unknown model {ref!r}{hint}", exact=True))

    def _check_deployments(self) -> None:
        for model_id, spec in self.policy.deployments.items():
            if model_id not in self.catalogue:
                self.issues.append(
                    self.source.issue(("deployments", model_id), f"unknown model {model_id!r}", exact=True)
                )
            for i, target in enumerate(spec.targets):
                if target.provider not in self.policy.providers:
                    self.issues.append(
                        self.source.issue(
                            ("deployments", model_id, "targets", i, "provider"),
                            f"no provider named {target.provider!r} in `providers:` "
                            f"(providers: {', '.join(sorted(self.policy.providers)) or 'none'})",
                        )
                    )

    def _warn_lifecycle(self) -> None:
        """Warn (file:line, field) about every deprecated or retired model the policy names."""
        refs = list(iter_model_refs(self.policy))
        refs += [(("models", i, "id"), spec.id) for i, spec in enumerate(self.policy.models)]
        for path, message in lifecycle_warnings(refs, list(self.catalogue)):
            warning = str(self.source.issue(path, message, exact=True))
            self.warnings.append(warning)
            log.warning("%s", warning, extra={COLLECTED: True})

    def _check_tasks_and_weights(self) -> None:
        labels = set(self.taxonomy.tasks)
        for i, rule in enumerate(self.policy.routes):
            for task in rule.when.task or ():
                if task not in labels:
                    self.issues.append(
                        self.source.issue(
                            ("routes", i, "when", "task"), f"unknown task {task!r}; tasks: {', '.join(sorted(labels))}"
                        )
                    )
        if self.taxonomy.default_task not in labels:
            self.issues.append(
                self.source.issue(("taxonomy", "default_task"), f"unknown task {self.taxonomy.default_task!r}")
            )
        scorer_names = {spec.name for spec in self.policy.score}
        prefs: list[tuple[tuple[str | int, ...], Preferences]] = [(("preferences",), self.policy.preferences)] + [
            (("routes", i, "preferences"), r.preferences) for i, r in enumerate(self.policy.routes) if r.preferences
        ]
        prefs += [
            (("experiments", i, "variants", name, "preferences"), v.preferences)
            for i, exp in enumerate(self.policy.experiments)
            for name, v in exp.variants.items()
            if v.preferences
        ]
        for path, pref in prefs:
            for key in pref.weights:
                if key not in scorer_names:
                    self.issues.append(
                        self.source.issue(
                            (*path, key),
                            f"no scorer named {key!r} in `score:` (scorers: {', '.join(sorted(scorer_names))})",
                        )
                    )
            if pref.weights and sum(pref.weights.values()) <= 0:
                self.issues.append(self.source.issue(path, "at least one weight must be greater than 0"))
