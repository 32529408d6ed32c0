"""Model lifecycles: when a model was released, deprecated and retired, and what replaces it.

The catalogue records ``released``, ``deprecated_on``, ``retires_on`` and ``successor`` per model (with
``lifecycle_source``). From them:

- ``llm-router models`` marks deprecated and retired models (:func:`mark`);
- a policy naming a model past its ``deprecated_on`` validates with a warning naming the successor
  (:func:`lifecycle_warnings`, collected in ``Router.warnings`` and shown by ``llm-router policy validate``);
- from ``retires_on`` on, the built-in ``lifecycle`` constraint (:class:`LifecycleConstraint`) excludes the
  model, with that reason in the decision, unless the policy pins it (``constrain: [{lifecycle: {pinned:
  [id]}}]``) or the request names it (``model:``).

Dates are compared with today's date in UTC.
"""

from __future__ import annotations

import datetime
import fnmatch
import time
from collections.abc import Iterable, Sequence
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .components import Candidate, Constraint, RoutingContext
from .types import ModelInfo

__all__ = ["LifecycleConfig", "LifecycleConstraint", "Status", "lifecycle_warnings", "mark", "status", "today"]

Status = Literal["active", "deprecated", "retired"]


def today() -> datetime.date:
    """Today's date in UTC."""
    return datetime.datetime.now(datetime.UTC).date()


def status(model: ModelInfo, on: datetime.date | None = None) -> Status:
    """``retired`` from ``retires_on``, ``deprecated`` from ``deprecated_on``, else ``active``."""
    on = on or today()
    if model.retires_on is not None and on >= model.retires_on:
        return "retired"
    if model.deprecated_on is not None and on >= model.deprecated_on:
        return "deprecated"
    return "active"


def mark(model: ModelInfo, on: datetime.date | None = None) -> str:
    """A short note for listings: ``""`` for an active model, else its state, date and successor."""
    state = status(model, on)
    if state == "active":
        if model.retires_on is not None:
            return f"retires {model.retires_on}"
        return ""
    if state == "retired":
        text = f"retired {model.retires_on}"
    else:
        text = f"deprecated {model.deprecated_on}"
        if model.retires_on is not None:
            text += f", retires {model.retires_on}"
    if model.successor:
        text += f"; successor {model.successor}"
    return text


def _successor(model: ModelInfo) -> str:
    return f"; use {model.successor} instead" if model.successor else ""


def lifecycle_warnings(
    refs: Iterable[tuple[tuple[str | int, ...], str]],
    models: Sequence[ModelInfo],
    *,
    on: datetime.date | None = None,
) -> list[tuple[tuple[str | int, ...], str]]:
    """``(path, message)`` for every model ``refs`` name (ids or globs, with their path in the policy) that is
    deprecated or retired ``on`` that date, once per model, at the first place that names it; a glob counts
    only when it matches no model that is still active (``openai/*`` does not warn because one model in it is
    deprecated)."""
    on = on or today()
    out: list[tuple[tuple[str | int, ...], str]] = []
    warned: set[str] = set()
    for path, ref in refs:
        matched = [m for m in models if m.id == ref or fnmatch.fnmatchcase(m.id, ref)]
        if not matched or (ref not in {m.id for m in matched} and any(status(m, on) == "active" for m in matched)):
            continue
        for m in matched:
            state = status(m, on)
            if state == "active" or m.id in warned:
                continue
            warned.add(m.id)
            if state == "deprecated":
                when = f" (retires {m.retires_on})" if m.retires_on else ""
                out.append((path, f"model {m.id} is deprecated since {m.deprecated_on}{when}{_successor(m)}"))
            else:
                out.append(
                    (
                        path,
                        f"model {m.id} retired on {m.retires_on}: the lifecycle constraint excludes it unless "
                        f"pinned{_successor(m)}",
                    )
                )
    return out


class LifecycleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pinned: list[str] = Field(
        default_factory=list, description="retired models (ids or globs) the policy keeps on purpose"
    )
    today: datetime.date | None = Field(default=None, description="the date to judge by (default: today, UTC)")
    retiring_within_days: int = Field(
        default=0,
        ge=0,
        description="also exclude models that retire within this many days (default 0: only retired ones)",
    )


class LifecycleConstraint(Constraint):
    """Excludes models past their ``retires_on`` date (the provider has shut them down), or within
    ``retiring_within_days`` of it, naming the date and the successor, unless ``pinned`` or named by the
    request's ``model``."""

    name: ClassVar[str] = "lifecycle"
    Config: ClassVar[type[BaseModel]] = LifecycleConfig
    config: LifecycleConfig

    _day: tuple[float, datetime.date] | None = None
    _reasons: dict[str, str | None] | None = None

    def _today(self) -> datetime.date:
        """The configured date, else today's (UTC), looked up at most once a minute."""
        if self.config.today is not None:
            return self.config.today
        now = time.monotonic()
        if self._day is None or now - self._day[0] > 60:
            self._day = (now, today())
            self._reasons = None  # a new day may retire more models
        return self._day[1]

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        on = self._today()
        reasons = self._reasons
        if reasons is None:
            reasons = self._reasons = {}
        pinned = self.config.pinned
        requested = ctx.request.model
        out: list[str | None] = []
        for cand in candidates:
            model = cand.model
            if model.retires_on is None:
                out.append(None)
                continue
            reason = reasons.get(model.id, "")
            if reason == "":
                reason = reasons[model.id] = self._reason(model, model.retires_on, on)
            if reason is not None and (model.id == requested or (pinned and self._pinned(model.id))):
                reason = None
            out.append(reason)
        return out

    def _reason(self, model: ModelInfo, retires_on: datetime.date, on: datetime.date) -> str | None:
        if on >= retires_on:
            return f"retired on {retires_on}{_successor(model)}"
        days = self.config.retiring_within_days
        if days and on >= retires_on - datetime.timedelta(days=days):
            return f"retires on {retires_on}, within {days} days (retiring_within_days){_successor(model)}"
        return None

    def _pinned(self, model_id: str) -> bool:
        return any(model_id == p or fnmatch.fnmatchcase(model_id, p) for p in self.config.pinned)
