"""The secret that keys the audit chain (HMAC-SHA256), kept in a file outside the database.

Whoever can rewrite the database cannot recompute the chain without this key,
so editing a row and re-hashing the chain after it is detected by
``targeting audit verify``. The file holds 32 random bytes as hex, is created
once (at install or the first start of a store whose chain is empty) with
permissions 0600, and is never overwritten. A store whose chain has rows but
whose key file is missing refuses to start: a new key would make the whole
chain look forged, and silently starting a new chain would hide that.

Default location (:func:`default_key_path`): beside an SQLite file
(``<db file>.audit-key``); ``var/audit.key`` under the working directory for
PostgreSQL. Set ``CCP_AUDIT_KEY_FILE`` to choose it.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

KEY_BYTES = 32


class AuditKeyError(RuntimeError):
    """The audit key file is missing, unreadable, malformed or readable by others."""


def default_key_path(database_url: str) -> Path:
    """Where the audit key of the store at ``database_url`` lives unless configured.

    Examples
    --------
    >>> default_key_path("sqlite:////srv/ccp/var/ccp.db").as_posix()
    '/srv/ccp/var/ccp.db.audit-key'
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).expanduser().resolve()
        return db.with_name(db.name + ".audit-key")
    return Path.cwd().resolve() / "var" / "audit.key"


class AuditKeyFile:
    """The audit key at ``path``, read once and kept in memory. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def exists(self) -> bool:
        """Whether the key file exists."""
        return self.path.is_file()

    def key(self) -> bytes:
        """The key; :class:`AuditKeyError` when the file is missing or not a private, well-formed key."""
        with self._lock:
            if self._key is None:
                self._key = _read_key(self.path)
            return self._key

    def ensure(self, *, chain_has_rows: bool) -> bytes:
        """The key, creating the file (0600) when it is missing and the chain is empty.

        Raises
        ------
        AuditKeyError
            When the file is missing but the chain already has rows (restore the
            key file; the chain cannot be verified without it).
        """
        with self._lock:
            if self._key is None and not self.path.exists():
                if chain_has_rows:
                    raise AuditKeyError(
                        f"audit key file {self.path} is missing but the store's audit chain has rows: restore the key file "
                        "(set CCP_AUDIT_KEY_FILE to its location); refusing to start a store whose chain cannot be verified"
                    )
                _create_key(self.path)
        return self.key()


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise AuditKeyError(f"audit key file {path} is missing (set CCP_AUDIT_KEY_FILE to its location)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"audit key file {path} cannot be read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(f"audit key file {path} is readable by other users; run: chmod 600 {path}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise AuditKeyError(f"audit key file {path} does not hold a {KEY_BYTES}-byte hex key")
    return key
