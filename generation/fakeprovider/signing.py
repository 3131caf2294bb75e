"""Provides the fake's webhook keys: fal's Ed25519 key with its JWKS, and Replicate's secret."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook


def _derive(seed: int | None, label: str, size: int) -> bytes:
    if seed is None:
        return os.urandom(size)
    return hashlib.sha256(f"fakeprovider:{label}:{seed}".encode()).digest()[:size]


def b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Keys:
    """The signing material of one fake server, random or derived from ``seed``."""

    def __init__(self, seed: int | None = None) -> None:
        self.fal_private_key = Ed25519PrivateKey.from_private_bytes(_derive(seed, "fal", 32))
        public = self.fal_public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.fal_kid = hashlib.sha256(public).hexdigest()[:16]
        self.replicate_secret = "whsec_" + base64.b64encode(_derive(seed, "replicate", 32)).decode(
            "ascii"
        )
        self._replicate = Webhook(self.replicate_secret)

    @property
    def fal_public_key(self) -> Ed25519PublicKey:
        return self.fal_private_key.public_key()

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """fal's JWKS shape; ``x`` is base64url without padding, as JWK (RFC 8037) writes it."""
        raw = self.fal_public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url_nopad(raw),
                    "kid": self.fal_kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        }

    def fal_headers(
        self, body: bytes, request_id: str, user_id: str, timestamp: int | None = None
    ) -> dict[str, str]:
        """Headers of a fal webhook: hex Ed25519 over ``rid\\nuid\\nts\\nsha256hex(body)``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = "\n".join([request_id, user_id, stamp, hashlib.sha256(body).hexdigest()])
        signature = self.fal_private_key.sign(message.encode("utf-8"))
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": signature.hex(),
        }

    def replicate_headers(
        self, body: bytes, msg_id: str, timestamp: int | None = None
    ) -> dict[str, str]:
        """Standard Webhooks headers, signed with the ``standardwebhooks`` library itself."""
        stamp = int(time.time()) if timestamp is None else timestamp
        moment = datetime.fromtimestamp(stamp, tz=UTC)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": self._replicate.sign(msg_id, moment, body.decode("utf-8")),
        }
