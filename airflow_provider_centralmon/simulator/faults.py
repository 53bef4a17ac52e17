"""Faults the simulator injects into replies, per route, deterministically when asked.

A :class:`FaultRule` matches a request path (exact, ``"*"`` for every path, or a prefix
ending in ``*``), fires with probability ``rate`` (drawn from a seeded generator, so a run is
repeatable) and, when ``count`` is set, only for the next ``count`` matching calls.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec

FaultKind = Literal["error", "rate_limit", "latency", "drop", "truncate"]
FAULT_KINDS: tuple[str, ...] = ("error", "rate_limit", "latency", "drop", "truncate")
MAX_LATENCY_S = 600.0


@dataclass(frozen=True, kw_only=True)
class FaultRule:
    """One fault to inject.

    :param kind: ``"error"`` (an HTML gateway page with ``status``), ``"rate_limit"`` (the
        429 quota reply), ``"latency"`` (``latency_s`` added before the reply), ``"drop"``
        (the connection closes halfway through the body) or ``"truncate"`` (a 200 whose JSON
        body is cut short)
    :param route: request path it applies to; ``"*"`` (default) means every path, and a
        value ending in ``*`` is a prefix, e.g. ``"/_s3/*"`` for presigned file downloads
    :param status: HTTP status of an ``"error"`` fault: 500, 502 or 503. Default 503.
    :param rate: probability of firing on a matching call, 0 to 1. Default 1.
    :param count: fire on the next ``count`` matching calls only; ``None`` (default) means
        no limit
    :param latency_s: seconds added by a ``"latency"`` fault. Default 0.
    """

    kind: FaultKind
    route: str = "*"
    status: int = 503
    rate: float = 1.0
    count: int | None = None
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        if self.kind == "error" and self.status not in (500, 502, 503):
            raise ValueError("an error fault's status must be 500, 502 or 503")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("a fault's rate must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("a fault's count cannot be negative")
        if not 0.0 <= self.latency_s <= MAX_LATENCY_S:
            raise ValueError(f"a fault's latency_s must be between 0 and {MAX_LATENCY_S:g}")

    def matches(self, path: str) -> bool:
        """Return whether the rule applies to a request for ``path``."""
        if self.route == "*":
            return True
        if self.route.endswith("*"):
            return path.startswith(self.route[:-1])
        return path == self.route

    @classmethod
    def from_spec(cls, spec: str | dict[str, Any] | FaultRule) -> FaultRule:
        """Build a rule from a dict of its fields or a ``ROUTE=KIND[,key=value...]`` string.

        Example: ``"/v1/logs/scroll=error,status=502,count=2"``.
        """
        if isinstance(spec, FaultRule):
            return spec
        if isinstance(spec, dict):
            try:
                # Checks every field's type, as a JSON body from the admin route may be anything.
                return msgspec.convert(spec, cls)
            except msgspec.ValidationError as error:
                raise ValueError(f"invalid fault {spec!r}: {error}") from None
        route, _, rest = spec.partition("=")
        kind, *options = rest.split(",")
        fields: dict[str, Any] = {"route": route.strip() or "*", "kind": kind.strip()}
        for option in options:
            key, _, value = option.partition("=")
            key = key.strip()
            if key in ("status", "count"):
                fields[key] = int(value)
            elif key in ("rate", "latency_s"):
                fields[key] = float(value)
            else:
                raise ValueError(f"unknown fault option {key!r} in {spec!r}")
        return cls(**fields)


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one reply: wait, then maybe replace or damage it."""

    latency_s: float = 0.0
    disruption: FaultRule | None = None


class FaultInjector:
    """Decides, call by call, which faults apply; thread-safe.

    :param seed: seed of the generator deciding rate-limited faults
    :param rules: the rules active at the start
    """

    def __init__(self, *, seed: int, rules: tuple[FaultRule, ...] = ()) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = list(rules)
        self.injected = 0

    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace every active rule."""
        with self._lock:
            self._rules = list(rules)

    def add_rules(self, rules: list[FaultRule]) -> None:
        """Add rules after the active ones."""
        with self._lock:
            self._rules.extend(rules)

    def rules(self) -> list[FaultRule]:
        """Return the active rules, with their remaining counts."""
        with self._lock:
            return list(self._rules)

    def reset(self, rules: tuple[FaultRule, ...] = ()) -> None:
        """Go back to ``rules``, a fresh generator and a zero injection count."""
        with self._lock:
            self._rules = list(rules)
            self._random = random.Random(self._seed)
            self.injected = 0

    def plan(self, path: str) -> FaultPlan:
        """Consume the rules matching ``path`` and return what to do to this call."""
        latency_s = 0.0
        disruption: FaultRule | None = None
        spent = False
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(path) or rule.count == 0:
                    continue
                if disruption is not None and rule.kind != "latency":
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    self._rules[index] = replace(rule, count=rule.count - 1)
                    spent = spent or rule.count == 1
                self.injected += 1
                if rule.kind == "latency":
                    latency_s += rule.latency_s
                else:
                    disruption = rule
            if spent:
                self._rules = [rule for rule in self._rules if rule.count != 0]
        return FaultPlan(latency_s=latency_s, disruption=disruption)
