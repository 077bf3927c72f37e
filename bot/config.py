"""Settings from the environment (``OUTAGEBOT_*``): one object, built once and passed in, never global."""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from dialogs.engine import DialogSettings

DEFAULT_DATABASE_URL = "sqlite:///./outagebot.db"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it (and never holds a secret)."""


class Settings(BaseSettings):
    """Everything that varies between deployments. Tests build their own with keyword arguments."""

    model_config = SettingsConfigDict(
        env_prefix="OUTAGEBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    pepper: SecretStr | None = Field(
        default=None, description="Secret mixed into every access-code hash; keep it outside the database."
    )
    pepper_file: Path | None = Field(default=None, description="a file holding the pepper (instead of PEPPER)")
    timezone: str = "America/Los_Angeles"
    operator_language: Literal["en", "vi"] = Field(default="en", description="language of the CLI's reports")
    support_phone: str = "1-800-990-7788"
    utility_name: str = Field(
        default="SCE",
        min_length=2,
        max_length=24,
        description="the utility's name as customers know it: the first message, HELP and opt-in notices carry it",
    )
    default_region: str = "US"
    session_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)
    lockout_failures: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    address_max_failures: int = Field(default=10, ge=1, le=1000)
    address_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    global_failure_alarm_per_minute: int = Field(default=60, ge=1)
    public_url: str | None = Field(default=None, description="base URL Twilio calls, e.g. https://bot.example.com")
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(default=None, description="the utility's SMS number (E.164)")
    twilio_messaging_service_sid: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    sms_max_body_bytes: int = Field(default=16_384, ge=1024)
    telegram_token: SecretStr | None = Field(default=None, description="the bot's token from BotFather")
    telegram_secret: SecretStr | None = Field(
        default=None, description="the webhook's secret token (16-256 of A-Z a-z 0-9 _ -); Telegram sends it back"
    )
    telegram_api_url: str = Field(default="https://api.telegram.org", description="the Bot API's base URL")
    telegram_max_body_bytes: int = Field(default=65_536, ge=4096)
    telegram_polling: bool = Field(
        default=False,
        description="fetch Telegram updates by long polling (set by serve --polling) instead of the webhook",
    )
    outbox_interval_seconds: float = Field(default=10.0, gt=0, description="how often serve does its periodic work")
    purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="how often serve purges what is past retention"
    )
    sms_per_second: float = Field(
        default=10.0,
        gt=0,
        le=10_000,
        description="SMS segments a second from our sender, all workers together (Twilio's MPS for the number)",
    )
    telegram_per_second: float = Field(
        default=30.0, gt=0, le=1000, description="Telegram messages a second, all workers together"
    )
    pacing: bool = Field(
        default=True, description="keep sends within the rates above (false only against a local stand-in)"
    )
    serve_dispatch: bool = Field(
        default=True, description="serve runs a dispatcher too (serve --no-worker turns it off)"
    )
    dispatch_batch: int = Field(default=200, ge=1, le=5000, description="deliveries a worker claims at a time")
    dispatch_concurrency: int = Field(default=64, ge=1, le=1000, description="sends a worker has in flight at once")
    dispatch_lease_seconds: float = Field(
        default=120.0, ge=1, le=3600, description="how long a claimed delivery is a worker's before others may take it"
    )
    dispatch_poll_seconds: float = Field(default=1.0, gt=0, le=60, description="how often an idle worker looks")
    alert_max_attempts: int = Field(
        default=10, ge=1, le=100, description="tries of an alert delivery before it fails (transient errors)"
    )
    scrypt_n: int = Field(default=2**13, ge=2, le=2**20, description="scrypt cost N (a power of two)")
    db_lock_timeout_seconds: float = Field(
        default=3.0, gt=0, le=10, description="longest wait for a lock or a connection in a turn"
    )
    db_statement_timeout_seconds: float = Field(default=5.0, gt=0, le=10, description="longest statement in a turn")
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="turns run at once per worker on PostgreSQL (a thread and a connection each)",
    )
    phone_regions: str = Field(default="US,CA", description="where contacts' numbers may be (ISO 3166 codes)")
    max_contacts_per_customer: int = Field(default=25, ge=1, le=10_000)
    notices_per_customer_per_hour: int = Field(default=20, ge=1, le=10_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="WARNING", description="the least severe log lines written (every line is masked: bot.logs)"
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: one line each with a UTC timestamp; json: one JSON object a line"
    )
    replay_retention_hours: int = Field(
        default=48, ge=1, le=24 * 366, description="how long a reply is kept to answer a provider's retry"
    )
    # At least a day, so longer than the idle timeout and the per-address throttle window (each at
    # most a day): a session purged for idleness holds nothing that is still in force.
    session_retention_days: int = Field(default=30, ge=1, le=3660, description="a session idle this long is deleted")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, value: str) -> str:
        codes = [c.strip().upper() for c in value.split(",") if c.strip()]
        unknown = [c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS]
        if not codes or unknown:
            raise ValueError(f"unknown region codes: {unknown or value!r}")
        return ",".join(codes)

    @field_validator("telegram_secret")
    @classmethod
    def _secret_token_alphabet(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram takes 1 to 256 characters; the secret is the webhook's only authentication, so a
        # guessable one is refused
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError("must be 16 to 256 of A-Z a-z 0-9 _ - (Telegram's secret_token; make it random)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("scrypt_n must be a power of two")
        return value

    @property
    def sms_enabled(self) -> bool:
        """Whether every setting the SMS channel needs is present."""
        return bool(
            self.public_url
            and self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from or self.twilio_messaging_service_sid)
        )

    @property
    def telegram_enabled(self) -> bool:
        """Whether the Telegram channel is on (a token; the webhook also needs the public URL and secret)."""
        return self.telegram_token is not None and bool(self.telegram_token.get_secret_value())

    @property
    def telegram_webhook_ready(self) -> bool:
        """Whether Telegram can post updates to ``/telegram/webhook`` (else only ``serve --polling`` works)."""
        return self.telegram_enabled and bool(self.public_url) and self.telegram_secret is not None

    @property
    def replay_retention(self) -> timedelta:
        """How long a remembered reply to a provider message is kept (replays within it get it again)."""
        return timedelta(hours=self.replay_retention_hours)

    @property
    def session_retention(self) -> timedelta:
        """How long an idle session is kept before it is deleted."""
        return timedelta(days=self.session_retention_days)

    @property
    def zone(self) -> ZoneInfo:
        """The utility's time zone, for showing times."""
        return ZoneInfo(self.timezone)

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions contacts' numbers may be in."""
        return tuple(self.phone_regions.split(","))

    @property
    def is_default_database(self) -> bool:
        """Whether this is the zero-configuration SQLite file (demo data and a generated pepper allowed)."""
        return self.database_url == DEFAULT_DATABASE_URL

    def database_file(self) -> Path | None:
        """The SQLite database file, if the database is one."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)

    def resolve_pepper(self, *, generate: bool = False) -> tuple[bytes, Path | None]:
        """The pepper, and the file it was just created in (if it was).

        ``OUTAGEBOT_PEPPER``, else ``OUTAGEBOT_PEPPER_FILE``. With ``generate`` and the default SQLite
        database only, a random pepper is made once in a file beside the database (mode 0600); every
        command on that demo database then reads it from there (its hashes were made with it). Anything
        else without a pepper is a :class:`ConfigError`.
        """
        if self.pepper is not None and self.pepper.get_secret_value():
            return self.pepper.get_secret_value().encode("utf-8"), None
        path = self.pepper_file
        created = None
        if path is None and self.is_default_database:
            database = self.database_file()
            assert database is not None
            beside = database.with_name(database.name + ".pepper")
            path = beside if generate or beside.exists() else None
            if generate and not beside.exists():
                beside.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(beside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as fh:
                    fh.write(secrets.token_urlsafe(32) + "\n")
                created = beside
        if path is None:
            raise ConfigError(
                "OUTAGEBOT_PEPPER (or OUTAGEBOT_PEPPER_FILE) is not set: it keeps access codes "
                "safe and must come from outside the database"
            )
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"OUTAGEBOT_PEPPER_FILE {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"OUTAGEBOT_PEPPER_FILE {path} is empty")
        return value.encode("utf-8"), created

    def dialog_settings(self) -> DialogSettings:
        """The part of the settings the dialogs need."""
        return DialogSettings(
            support_phone=self.support_phone,
            utility_name=self.utility_name,
            region=self.default_region,
            phone_regions=self.regions,
            max_contacts=self.max_contacts_per_customer,
            idle_timeout=timedelta(minutes=self.session_idle_minutes),
            verified_max_age=timedelta(hours=self.session_max_hours),
        )
