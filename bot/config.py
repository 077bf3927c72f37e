"""Settings from the environment (``OUTAGEBOT_*``): one object, built once and passed in, never global."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogs.engine import DialogSettings


class Settings(BaseSettings):
    """Everything that varies between deployments. Tests build their own with keyword arguments."""

    model_config = SettingsConfigDict(env_prefix="OUTAGEBOT_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./outagebot.db"
    pepper: SecretStr = Field(
        default=SecretStr("outagebot-demo-pepper-change-me"),
        description="Secret mixed into every access-code hash; keep it outside the database.",
    )
    timezone: str = "America/Los_Angeles"
    operator_language: Literal["en", "vi"] = Field(default="en", description="language of the CLI's reports")
    support_phone: str = "1-800-990-7788"
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
    outbox_interval_seconds: float = Field(default=10.0, gt=0, description="how often due retries are sent")
    scrypt_n: int = Field(default=2**13, ge=2, le=2**20, description="scrypt cost N (a power of two)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("scrypt_n")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("scrypt_n must be a power of two")
        return value

    @property
    def sms_enabled(self) -> bool:
        """Whether every setting the SMS channel needs is present."""
        return bool(self.public_url and self.twilio_account_sid and self.twilio_auth_token
                    and (self.twilio_from or self.twilio_messaging_service_sid))

    @property
    def zone(self) -> ZoneInfo:
        """The utility's time zone, for showing times."""
        return ZoneInfo(self.timezone)

    def dialog_settings(self) -> DialogSettings:
        """The part of the settings the dialogs need."""
        return DialogSettings(
            support_phone=self.support_phone,
            region=self.default_region,
            idle_timeout=timedelta(minutes=self.session_idle_minutes),
            verified_max_age=timedelta(hours=self.session_max_hours),
        )
