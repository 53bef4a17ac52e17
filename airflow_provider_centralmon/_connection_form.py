"""The Central Monitoring connection form, declared once for every Airflow version.

Airflow 3.2 and later read the form from the provider info (``conn-fields`` and
``ui-field-behaviour``); earlier versions ask the hook class. Both are built from the
definitions below so the two forms cannot drift apart.
"""

from __future__ import annotations

from typing import Any

DEFAULT_API_URL = "https://central-monitoring-prod.mywizard-aiops.com"
DEFAULT_AUTH_URL = (
    "https://central-monitoring-external-api-prod.auth.ap-southeast-2.amazoncognito.com"
    "/oauth2/token"
)

# Extra fields, stored in the connection's extra JSON. Keys must stay free of words such as
# "token" or "secret": Airflow's masker hides the value of any such key in every log line,
# which would make an ordinary URL unreadable in task logs.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "auth_url": {
        "label": "Auth URL",
        "description": "OAuth2 token endpoint (Amazon Cognito). Empty: the production endpoint.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "scope": {
        "label": "Scope",
        "description": "OAuth2 scope to request. Empty: none, Cognito grants every allowed scope.",
        "schema": {"type": ["string", "null"]},
    },
    "routes": {
        "label": "Route overrides",
        "description": 'JSON object, operation name to path, e.g. {"scroll": "/v2/logs/scroll"}.',
        "schema": {"type": ["object", "null"], "format": "json"},
    },
    "auth_method": {
        "label": "Client authentication",
        "description": "How the client id and secret reach the token endpoint.",
        "schema": {
            "type": ["string", "null"],
            "enum": ["client_secret_post", "client_secret_basic"],
            "default": "client_secret_post",
        },
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Seconds to connect, and to wait for each part of a reply.",
        "schema": {"type": ["number", "null"], "default": 60},
    },
    "verify": {
        "label": "TLS verification",
        "description": "true, false, or the path of a CA bundle.",
        "schema": {"type": ["string", "null"], "default": "true"},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
    "placeholders": {
        "host": DEFAULT_API_URL,
        "login": "Cognito app client id",
        "auth_url": DEFAULT_AUTH_URL,
        "routes": '{"scroll": "/v2/logs/scroll"}',
    },
}


def legacy_field_behaviour() -> dict[str, Any]:
    """Return the form behaviour in the shape hook classes returned before Airflow 3.2."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


def legacy_form_widgets() -> dict[str, Any]:
    """Return WTForms widgets for the extra fields, for Airflow versions before 3.2."""
    # Imported here: the web UI of those versions ships these libraries, workers need not.
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import StringField

    return {
        name: StringField(
            lazy_gettext(field["label"]),
            widget=BS3TextFieldWidget(),
            description=field["description"],
        )
        for name, field in CONN_FIELDS.items()
    }
