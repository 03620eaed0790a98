"""The exchange configuration of one instance: the units it hosts (with their signing keys) and its peers.

A TOML file (setting ``exchange_config``, ``CCP_EXCHANGE_CONFIG``); relative key paths are relative to it::

    retry_base_seconds = 1.0       # first retry after 1 s, then 2, 4 ... (exponential backoff)
    retry_max_seconds = 300.0

    [[units]]                      # units this instance hosts
    id = "PCU-ECGYE"
    port = "ECGYE"
    role = "EXPORT"                # EXPORT, TRANSSHIPMENT or IMPORT
    key_file = "keys/pcu-ecgye.pem"

    [[peers]]                      # units of other instances
    id = "PCU-NLRTM"
    port = "NLRTM"
    role = "IMPORT"
    public_key = "base64 raw Ed25519 public key"
    inbox_url = "http://127.0.0.1:8102/v1/exchange/inbox"   # omit for a file-only peer
    auto_accept = ["ALERT", "PRE_ARRIVAL_NOTICE"]            # per-peer policy: accepted without an analyst

An unknown key, a duplicate unit id, a peer id equal to a local unit, a bad
public key or an unreadable signing key is refused when the file is loaded.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from targeting.exchange.messages import MESSAGE_TYPES, UnitId
from targeting.exchange.signing import load_private_key, public_key_from_text

UnitRole = Literal["EXPORT", "TRANSSHIPMENT", "IMPORT"]
Locode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")]


class ExchangeConfigError(ValueError):
    """The exchange configuration file is missing or invalid (the message names the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalUnitConfig(_Strict):
    id: UnitId
    port: Locode
    role: UnitRole
    key_file: Path


class PeerConfig(_Strict):
    id: UnitId
    port: Locode
    role: UnitRole
    public_key: str
    inbox_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)] | None = None
    auto_accept: list[Literal[MESSAGE_TYPES]] = []  # type: ignore[valid-type]

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        public_key_from_text(value)
        return value


class ExchangeConfig(_Strict):
    retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
    retry_max_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    send_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 5.0
    units: Annotated[list[LocalUnitConfig], Field(min_length=1)]
    peers: list[PeerConfig] = []

    @model_validator(mode="after")
    def _distinct(self) -> ExchangeConfig:
        ids = [u.id for u in self.units] + [p.id for p in self.peers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"unit ids must be distinct across units and peers: {', '.join(duplicates)}")
        return self


@dataclass(frozen=True)
class LocalUnit:
    """A unit this instance hosts, with its loaded signing key."""

    id: str
    port: str
    role: str
    key: Ed25519PrivateKey


@dataclass(frozen=True)
class Peer:
    """A unit of another instance: its public key, inbox and acceptance policy."""

    id: str
    port: str
    role: str
    public_key: Ed25519PublicKey
    inbox_url: str | None
    auto_accept: frozenset[str]


@dataclass(frozen=True)
class ExchangeNetwork:
    """The loaded configuration of one instance (immutable)."""

    units: dict[str, LocalUnit]
    peers: dict[str, Peer]
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    send_timeout_seconds: float = 5.0

    def units_at_ports(self, ports: tuple[str, ...] | list[str]) -> list[LocalUnit]:
        """Local units whose port is one of ``ports``."""
        return [u for u in self.units.values() if u.port in ports]

    def backoff_seconds(self, attempts: int) -> float:
        """Delay before the next try after ``attempts`` failed ones: base * 2^(attempts-1), capped."""
        return min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, attempts - 1))


def load_network(path: Path) -> ExchangeNetwork:
    """Read and check the exchange configuration file ``path`` and load the local signing keys.

    Raises
    ------
    ExchangeConfigError
        When the file is missing, not TOML, breaks a rule (the field is named) or a key cannot be loaded.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        config = ExchangeConfig.model_validate(raw)
    except OSError as exc:
        raise ExchangeConfigError(f"exchange configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExchangeConfigError(f"exchange configuration {path}: not TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ExchangeConfigError(f"exchange configuration {path}: {where}: {first['msg']}") from None
    units = {
        u.id: LocalUnit(u.id, u.port, u.role, load_private_key(u.key_file if u.key_file.is_absolute() else path.parent / u.key_file))
        for u in config.units
    }
    peers = {
        p.id: Peer(p.id, p.port, p.role, public_key_from_text(p.public_key), p.inbox_url, frozenset(p.auto_accept))
        for p in config.peers
    }
    return ExchangeNetwork(units, peers, config.retry_base_seconds, config.retry_max_seconds, config.send_timeout_seconds)
