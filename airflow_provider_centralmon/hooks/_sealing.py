"""Seal secrets (batch tokens) so they can travel through XCom and trigger arguments.

XCom values and trigger arguments are stored unmasked in Airflow's database. A sealed value
is a Fernet token (AES-128-CBC with HMAC-SHA256, timestamped) whose key is derived from the
connection's client secret with HKDF-SHA256, salted with the client id. Anyone who can read
the database but not the connection's secret cannot recover the value, and only a worker or
triggerer holding the same connection can unseal it.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_centralmon.exceptions import InvalidParameterError

SEALED_PREFIX = "cmseal1:"
# Binds derived keys to this one purpose, so the same secret used elsewhere yields other keys.
_HKDF_INFO = b"airflow-provider-centralmon seal v1"


def _fernet(client_id: str, client_secret: str) -> Fernet:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=client_id.encode("utf-8"),
        info=_HKDF_INFO,
    )
    key = hkdf.derive(client_secret.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, *, client_id: str, client_secret: str) -> str:
    """Encrypt ``secret`` with a key derived from the client credentials."""
    if not isinstance(secret, str) or not secret:
        raise InvalidParameterError("Only a non-empty string can be sealed")
    token = _fernet(client_id, client_secret).encrypt(secret.encode("utf-8"))
    return SEALED_PREFIX + token.decode("ascii")


def unseal(sealed: str, *, client_id: str, client_secret: str, conn_id: str) -> str:
    """Decrypt a value made by :func:`seal` with the same client credentials."""
    if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
        raise InvalidParameterError(
            "The value is not a sealed secret of this provider (expected a value returned "
            "by seal())"
        )
    try:
        plain = _fernet(client_id, client_secret).decrypt(sealed[len(SEALED_PREFIX) :])
    except InvalidToken:
        raise InvalidParameterError(
            f"The sealed value cannot be opened with the credentials of connection {conn_id!r}: "
            "it was sealed with another client id or secret, or it was altered"
        ) from None
    return plain.decode("utf-8")
