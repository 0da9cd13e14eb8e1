"""The simulator's ed25519 signing key: from TELNYX_SIMULATOR_PRIVATE_KEY, else a fixed development key."""

from __future__ import annotations

import base64
import hashlib
import os

from nacl.signing import SigningKey

# Public, on purpose: the demo configures the dashboard with its public half. Never use it for real.
DEVELOPMENT_SEED = hashlib.sha256(b"telnyx-simulator development key: not a secret").digest()
DEFAULT_API_KEY = "KEY_SIMULATOR"


def signing_key(seed_b64: str | None = None) -> SigningKey:
    seed_b64 = seed_b64 if seed_b64 is not None else os.environ.get("TELNYX_SIMULATOR_PRIVATE_KEY", "")
    if not seed_b64:
        return SigningKey(DEVELOPMENT_SEED)
    seed = base64.b64decode(seed_b64, validate=True)
    if len(seed) != 32:
        raise ValueError("TELNYX_SIMULATOR_PRIVATE_KEY must be the base64 of a 32-byte ed25519 seed")
    return SigningKey(seed)


def public_key_b64(key: SigningKey) -> str:
    return base64.b64encode(bytes(key.verify_key)).decode()


def development_public_key() -> str:
    return public_key_b64(SigningKey(DEVELOPMENT_SEED))
