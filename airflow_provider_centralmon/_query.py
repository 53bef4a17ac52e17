"""The search fields shared by every log operator, sensor and trigger.

The service documents a search body of ``application``, ``time_range`` and a few optional
fields. :class:`LogQuery` holds everything but the time range, checks it before any quota
is spent, and builds the body once the time range is known.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_centralmon.exceptions import InvalidParameterError

# The applications the service accepts today; it answers 400 for any other. A new one can be
# used before this list learns of it with ``allow_unknown_application=True``.
KNOWN_APPLICATIONS = frozenset({"atr", "klewer", "eventops", "quasar"})

KNOWN_APP_TYPES = frozenset({"ec2", "caas"})

# The service documents these fields for EventOps only.
EVENTOPS_ONLY_FIELDS = ("log_group", "tenant", "stage")

# Fields the provider sets itself; ``extra_body`` may not replace them, whatever the case of
# their letters, since the service may not tell them apart. ``app_type`` is left out on
# purpose: a value the service adds later can be sent through ``extra_body``, as long as the
# ``app_type`` parameter is not set too.
RESERVED_FIELDS = frozenset(
    {"application", "time_range", "scroll_id", "domain", "filters", "size"}
    | set(EVENTOPS_ONLY_FIELDS)
)

_SCALAR_TYPES = (str, int, float, bool)


def is_templated(value: object) -> bool:
    """Tell whether a value still holds a Jinja expression, so it can only be checked later."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def resolved_at_run_time(value: object) -> bool:
    """Whether ``value`` is only known when the task runs: an ``XComArg`` or the like.

    Airflow resolves such values (everything with ``resolve`` and ``iter_references``
    methods, on 2.11 and 3) before rendering; anything else given to an operator is a
    literal and can be checked when the DAG is parsed.
    """
    # Both methods, since paths have a resolve method too, of another meaning.
    deferred = all(callable(getattr(value, name, None)) for name in ("resolve", "iter_references"))
    return deferred and not isinstance(value, str | Mapping)


def known_later(value: object) -> bool:
    """Whether ``value`` is a Jinja template or resolved at run time: checked only then."""
    return is_templated(value) or resolved_at_run_time(value)


@dataclass(frozen=True)
class LogQuery:
    """What to search for, without the time range.

    :param application: one of ``atr``, ``klewer``, ``eventops``, ``quasar``
    :param domain: domain of the monitored environment; all domains when None
    :param app_type: ``ec2`` or ``caas``; all when None
    :param filters: exact-match filters on record fields, e.g. ``{"level": "ERROR"}``
    :param log_group: EventOps only
    :param tenant: EventOps only
    :param stage: EventOps only
    :param page_size: records per request (``size``); the service's default when None
    :param extra_body: further request fields, for fields the service adds later
    :param allow_unknown_application: accept an application not known to this provider
    """

    application: str
    domain: str | None = None
    app_type: str | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)
    log_group: str | None = None
    tenant: str | None = None
    stage: str | None = None
    page_size: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    allow_unknown_application: bool = False

    def validate(self) -> None:
        """Raise :class:`InvalidParameterError` for the first field that cannot be sent.

        Fields that still hold a Jinja expression are skipped: they are checked again once
        rendered.
        """
        self._check_application()
        self._check_optional_strings()
        self._check_filters()
        self._check_page_size()
        self._check_extra_body()

    def search_body(self, time_range: str) -> dict[str, Any]:
        """Return the body of a first scroll call or a batch submission."""
        body: dict[str, Any] = {"application": self.application, "time_range": time_range}
        optional = {
            "domain": self.domain,
            "app_type": self.app_type,
            "log_group": self.log_group,
            "tenant": self.tenant,
            "stage": self.stage,
            "size": self.page_size,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        if self.filters:
            body["filters"] = dict(self.filters)
        body.update(self.extra_body)
        return body

    def identity(self) -> dict[str, Any]:
        """Return the fields that decide which records match, for manifests and layouts.

        The page size is left out: it changes how records arrive, not which.
        """
        fields = self.search_body(time_range="")
        del fields["time_range"]
        fields.pop("size", None)
        return fields

    def fingerprint(self) -> str:
        """Return a short stable hash of :meth:`identity`."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def _check_application(self) -> None:
        if is_templated(self.application):
            return
        if not isinstance(self.application, str) or not self.application:
            raise InvalidParameterError("application must be a non-empty string")
        if self.application in KNOWN_APPLICATIONS or self.allow_unknown_application:
            return
        known = ", ".join(sorted(KNOWN_APPLICATIONS))
        raise InvalidParameterError(
            f"application {self.application!r} is not one of {known}; if the service has "
            "added it, pass allow_unknown_application=True"
        )

    def _check_optional_strings(self) -> None:
        for name in ("domain", "app_type", *EVENTOPS_ONLY_FIELDS):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidParameterError(f"{name} must be a string, got {type(value).__name__}")

        app_type = self.app_type
        if app_type is not None and not is_templated(app_type) and app_type not in KNOWN_APP_TYPES:
            raise InvalidParameterError(
                f"app_type {app_type!r} is not one of "
                f"{', '.join(sorted(KNOWN_APP_TYPES))}; pass a new value through extra_body"
            )

        if is_templated(self.application) or self.application == "eventops":
            return
        for name in EVENTOPS_ONLY_FIELDS:
            if getattr(self, name) is not None:
                raise InvalidParameterError(
                    f"{name} applies to application 'eventops' only, "
                    f"not {self.application!r}; remove it"
                )

    def _check_filters(self) -> None:
        if is_templated(self.filters):
            return
        if not isinstance(self.filters, Mapping):
            raise InvalidParameterError(
                f"filters must be a mapping of field to value, got {type(self.filters).__name__}"
            )
        for key, value in self.filters.items():
            if not isinstance(key, str) or not key:
                raise InvalidParameterError(f"filter names must be non-empty strings: {key!r}")
            if not isinstance(value, _SCALAR_TYPES):
                raise InvalidParameterError(
                    f"filter {key!r} must be a string, number or boolean to match exactly, "
                    f"got {type(value).__name__}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidParameterError(
                    f"filter {key!r} must be a finite number, got {value!r}: JSON has no "
                    "NaN or infinity to send"
                )

    def _check_page_size(self) -> None:
        if self.page_size is None or is_templated(self.page_size):
            return
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int):
            raise InvalidParameterError("page_size must be a whole number")
        if self.page_size < 1:
            raise InvalidParameterError(f"page_size must be at least 1, got {self.page_size}")

    def _check_extra_body(self) -> None:
        if is_templated(self.extra_body):
            return
        if not isinstance(self.extra_body, Mapping):
            raise InvalidParameterError("extra_body must be a mapping of request fields")
        names = [str(name) for name in self.extra_body]
        clashes = sorted(name for name in names if name.lower() in RESERVED_FIELDS)
        if clashes:
            raise InvalidParameterError(
                f"extra_body may not set {', '.join(clashes)}: use the operator parameters "
                "of the same names"
            )
        app_types = [name for name in names if name.lower() == "app_type"]
        if app_types and self.app_type is not None:
            raise InvalidParameterError(
                f"extra_body sets {app_types[0]}, and so does the app_type parameter: set it "
                "in one place (extra_body only for a value other than ec2 or caas)"
            )
