"""Service configuration: one ``Settings`` object read from ``CCP_*`` environment variables and ``<CCP_HOME>/ccp.toml``.

The store locations (``home``, ``database_url``, ``lake_dir``,
``mlflow_tracking_uri``) and the sources and their precedence are those of
:class:`targeting.config.StoreSettings`, shared with every command.

``Settings`` refuses unsafe configurations when it is created (at start-up), so
a misconfigured service never starts: binding a non-loopback address without
``CCP_ALLOW_REMOTE=true``, pickle deserialisation enabled in MLflow, an
in-memory database (acknowledged writes would vanish), page-size limits out of
range.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from targeting.config import StoreSettings

PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
"""MLflow's switch for unpickling model artifacts; the service requires it to be false."""

_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
MAX_PAGE_SIZE_CEILING = 1000
"""No configuration may allow pages larger than this."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    Examples
    --------
    >>> is_loopback_host("127.0.0.1"), is_loopback_host("::1"), is_loopback_host("0.0.0.0")
    (True, True, False)
    """
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def pickle_setting_is_safe(value: str | None) -> bool:
    """Whether the ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` value disables unpickling (unset counts as safe: we set it)."""
    return value is None or value.strip().lower() in _FALSE_WORDS


class Settings(StoreSettings):
    """Configuration of the service, its store and its engine.

    Every field is read from the environment variable ``CCP_<FIELD>`` (upper
    case) or from ``ccp.toml`` in ``CCP_HOME``. Store paths default to
    locations under ``CCP_HOME`` (the current directory when unset), resolved
    to absolute paths when the settings are created.
    """

    model_config = SettingsConfigDict(env_prefix="CCP_", extra="ignore", frozen=True)

    model_cache_dir: Path | None = None
    """Where the last verified local copy of the champion is kept (served when MLflow is unreachable);
    default ``<lake_dir>/../var/model-cache``."""
    model_name: str = Field(default="container-risk", min_length=1, max_length=100)
    """Registered model name whose ``champion`` alias is served."""
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8000, ge=1, le=65535)
    allow_remote: bool = False
    """Must be true to bind a non-loopback address."""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Largest request body accepted; larger bodies get 413."""
    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=200, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, le=600_000)
    """How long an SQLite writer waits for the write lock before the request fails with 503."""
    key_cache_seconds: float = Field(default=5.0, ge=0.0, le=60.0)
    """How long a verified API key is trusted without reading the store again; a revoked key is
    refused within this time (0: every request reads the store)."""
    audit_key_file: Path | None = None
    """File of the secret keying the audit chain (HMAC), outside the database; created 0600 at the first start
    of an empty store. Default: beside an SQLite file (``<db>.audit-key``), else ``var/audit.key``."""
    rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"officer": 100.0, "data_scientist": 100.0, "auditor": 100.0, "admin": 100.0}
    )
    """Requests per second allowed to each API key, by role (JSON in ``CCP_RATE_LIMITS``); above it: 429 with
    ``Retry-After``. Every role needs a limit."""
    key_rate_limits: dict[str, float] = Field(default_factory=dict)
    """Requests per second of particular key ids, overriding their role's limit (JSON, e.g. ``{"0a1b2c3d4e5f": 20}``)."""
    rate_limit_burst_seconds: float = Field(default=2.0, ge=0.01, le=600.0)
    """A key may send this many seconds' worth of its rate at once (bucket size; at least one request)."""
    auth_failure_flush_seconds: float = Field(default=1.0, ge=0.0, le=60.0)
    """How often the counts of failed authentications (per client address and minute) are written;
    0 only in tests that flush themselves."""
    auth_failure_free_per_second: int = Field(default=20, ge=1, le=100_000)
    """Failed authentications per second a client address gets answered at once; beyond, each 401 waits
    ``auth_failure_delay_seconds`` (a tarpit that costs the service a timer, not CPU)."""
    auth_failure_delay_seconds: float = Field(default=1.0, ge=0.0, le=30.0)
    gil_switch_interval_ms: float = Field(default=0.5, ge=0.05, le=50.0)
    """Python's thread switch interval in the serving process (``sys.setswitchinterval``; Python's default is 5 ms).
    The group writer releases the interpreter lock at every SQL statement; with Python's default it then waits
    up to 5 ms behind the request threads each time, which caps the write rate."""
    write_batch_max: int = Field(default=256, ge=1, le=10_000)
    """Most write operations (outcomes, audit events ...) group-committed in one transaction (:mod:`serve.writer`)."""
    exchange_config: Path | None = None
    """TOML file of the intelligence exchange (units hosted here, their signing keys, peers; see
    :mod:`targeting.exchange.network`); relative to ``home``. None: this instance does not exchange."""
    exchange_poll_seconds: float = Field(default=0.5, ge=0.05, le=60.0)
    """How often the exchange worker delivers the outbox and sends due feedback."""
    engine_factory: str | None = Field(default=None, max_length=200)
    """``module:callable`` building the targeting engine from ``Settings``; none means no engine (503 on model routes)."""

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        problems = unsafe_configuration_problems(self, os.environ.get(PICKLE_ENV))
        if problems:
            raise ValueError("unsafe configuration: " + "; ".join(problems))
        return self


def unsafe_configuration_problems(settings: Settings, pickle_env: str | None) -> list[str]:
    """Every reason ``settings`` (with the given pickle environment value) is unsafe; empty when safe."""
    problems: list[str] = []
    if not settings.allow_remote and not is_loopback_host(settings.host):
        problems.append(f"host {settings.host!r} is not a loopback address; set CCP_ALLOW_REMOTE=true to bind it")
    if not pickle_setting_is_safe(pickle_env):
        problems.append(f"{PICKLE_ENV} must be false")
    if not 1 <= settings.max_page_size <= MAX_PAGE_SIZE_CEILING:
        problems.append(f"max_page_size must be between 1 and {MAX_PAGE_SIZE_CEILING}")
    if not 1 <= settings.default_page_size <= settings.max_page_size:
        problems.append("default_page_size must be between 1 and max_page_size")
    url = settings.database_url.strip().lower()
    if url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:") or "mode=memory" in url):
        problems.append("an in-memory SQLite database loses acknowledged writes; use a file")
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        problems.append("database_url must be an SQLite or PostgreSQL URL")
    known_roles = {"officer", "data_scientist", "auditor", "admin"}
    if set(settings.rate_limits) != known_roles:
        problems.append(f"rate_limits must give exactly the roles {', '.join(sorted(known_roles))}")
    if any(not 0 < rate <= 1_000_000 for rate in [*settings.rate_limits.values(), *settings.key_rate_limits.values()]):
        problems.append("every rate limit must be above 0 and at most 1000000 requests per second")
    if settings.engine_factory is not None and settings.engine_factory.count(":") != 1:
        problems.append("engine_factory must look like 'package.module:callable'")
    return problems


def harden_process_environment() -> None:
    """Disable pickle deserialisation in MLflow for this process (idempotent)."""
    os.environ[PICKLE_ENV] = "false"
