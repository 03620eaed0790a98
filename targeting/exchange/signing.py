"""Ed25519 keys, canonical JSON and detached signatures of exchange messages (``cryptography``).

A message is signed over its canonical JSON (:func:`canonical_bytes`: UTF-8,
sorted keys, no whitespace, no NaN). The receiver verifies the signature over
the canonical JSON of the message dict exactly as received, before trusting
any of its fields beyond ``sender`` (which picks the key).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFileError(ValueError):
    """A signing key file is missing or not an Ed25519 private key."""


def canonical_bytes(data: Any) -> bytes:
    """Deterministic JSON bytes of ``data`` (sorted keys, compact, UTF-8, NaN refused).

    Examples
    --------
    >>> canonical_bytes({"b": 1, "a": "é"})
    b'{"a":"\\xc3\\xa9","b":1}'
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def generate_private_key() -> Ed25519PrivateKey:
    """A new random Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by the owner only (0600); refuses to overwrite."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path`` (:class:`KeyFileError` when missing or of another type)."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"signing key file {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"signing key file {path} does not hold an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64 (what peers put in their configuration)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Parse a base64 raw public key (``ValueError`` when it is not 32 bytes of base64)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("public key must be base64") from None
    if len(raw) != 32:
        raise ValueError("public key must be 32 bytes (base64 of a raw Ed25519 key)")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(message: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Base64 detached signature of the canonical JSON of ``message``."""
    return base64.b64encode(key.sign(canonical_bytes(message))).decode()


def verify(message: dict[str, Any], signature: str, public_key: Ed25519PublicKey) -> bool:
    """Whether ``signature`` (base64) signs the canonical JSON of ``message`` under ``public_key``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, canonical_bytes(message))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
