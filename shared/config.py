"""Settings, read once from the environment (prefix-free names that ops expect: DATABASE_URL, REDIS_URL)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str | None = Field(None, description="postgresql+asyncpg://…; unset = embedded server")
    redis_url: str | None = Field(None, description="redis://…; unset = embedded server")
    data_dir: Path = Field(Path(".data"), alias="GUESTCARD_DATA_DIR")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        None,
        alias="GUESTCARD_PUBLIC_URL",
        description="the URL senders call (scheme://host[:port]); signatures are checked over it",
    )
    service_token: str | None = Field(
        None,
        alias="GUESTCARD_SERVICE_TOKEN",
        description="shared secret of worker→API calls; generated into the data dir when unset",
    )
    secret_key: str | None = Field(
        None,
        alias="GUESTCARD_SECRET_KEY",
        description="signs one-click links (offers, unsubscribe, calendar feeds, dashboard); unset = generated "
        "once into the data folder",
    )
    encryption_keys: str | None = Field(
        None,
        alias="GUESTCARD_ENCRYPTION_KEYS",
        description="Fernet keys, comma-separated, newest first, that encrypt provider secrets at rest; unset = "
        "one generated once into the data folder. Rotate: put a new key first, run `guestcard secrets rotate`, "
        "then drop the old one",
    )
    api_url: str | None = Field(None, alias="GUESTCARD_API_URL", description="where the worker finds the API")
    log_level: str = Field("INFO", alias="GUESTCARD_LOG_LEVEL")
    log_json: bool = Field(True, alias="GUESTCARD_LOG_JSON")
    db_pool_size: int = Field(10, alias="GUESTCARD_DB_POOL_SIZE")
    # API key → principal, kept this long per API process; a revoke or deactivation drops it everywhere at once
    # (Redis pub/sub), the TTL bounds it when Redis is away. 0 = off.
    principal_cache_seconds: float = Field(5.0, alias="GUESTCARD_PRINCIPAL_CACHE_SECONDS")
    queue_name: str = Field("guestcard:queue", alias="GUESTCARD_QUEUE")
    worker_max_jobs: int = Field(50, alias="GUESTCARD_WORKER_MAX_JOBS")
    worker_poll_delay: float = Field(0.25, alias="GUESTCARD_WORKER_POLL_DELAY")
    inbound_sweep_after_seconds: int = Field(120, alias="GUESTCARD_SWEEP_AFTER_SECONDS")
    email_max_bytes: int = Field(25 * 1024 * 1024, alias="GUESTCARD_EMAIL_MAX_BYTES")
    webhook_max_bytes: int = Field(1024 * 1024, alias="GUESTCARD_WEBHOOK_MAX_BYTES")
    # rate limits (GCRA in Redis, shared by every API process): a sustained rate and the burst on top; 0 = off.
    # Intake is generous on purpose: an ILS catching up after an outage must never be throttled at 50/s.
    rate_limit_api_per_second: float = Field(100.0, alias="GUESTCARD_RATE_LIMIT_API_PER_SECOND")
    rate_limit_api_burst: int = Field(300, alias="GUESTCARD_RATE_LIMIT_API_BURST")
    rate_limit_intake_per_second: float = Field(200.0, alias="GUESTCARD_RATE_LIMIT_INTAKE_PER_SECOND")
    rate_limit_intake_burst: int = Field(2000, alias="GUESTCARD_RATE_LIMIT_INTAKE_BURST")
    # outgoing webhooks and the event stream (services/api/webhooks)
    webhook_timeout_seconds: float = Field(10.0, alias="GUESTCARD_WEBHOOK_TIMEOUT_SECONDS")
    webhook_retry_hours: float = Field(24.0, alias="GUESTCARD_WEBHOOK_RETRY_HOURS", description="retry window")
    webhook_disable_after_hours: float = Field(
        24.0, alias="GUESTCARD_WEBHOOK_DISABLE_AFTER_HOURS", description="an endpoint failing this long is disabled"
    )
    webhook_secret_grace_hours: float = Field(
        24.0, alias="GUESTCARD_WEBHOOK_SECRET_GRACE_HOURS", description="a rotated secret keeps signing this long"
    )
    # messaging (services/api/messaging)
    twilio_api_url: str = Field(
        "https://api.twilio.com",
        alias="GUESTCARD_TWILIO_API_URL",
        description="Twilio REST base URL (tests and Twilio-compatible providers point it elsewhere)",
    )
    messaging_default_provider: str = Field(
        "record",
        alias="GUESTCARD_MESSAGING_DEFAULT_PROVIDER",
        description="provider of a channel an organization has not configured: record (sends nothing) or none",
    )
    # tours/units: an open lead untouched this many days counts as aged, so a matching unit reactivates it
    reactivation_after_days: int = Field(30, alias="GUESTCARD_REACTIVATION_AFTER_DAYS", ge=1)

    def api_base_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
