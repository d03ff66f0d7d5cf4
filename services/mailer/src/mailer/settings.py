from email.utils import parseaddr
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator

from servicekit.settings import TrackingSettings


class Settings(TrackingSettings):
    """The mailer's environment. PUBLIC_BASE_URL, TRACKING_SECRET and ENVIRONMENT come from
    TrackingSettings, which refuses the public default secret outside development."""

    http_port: int = 8084
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None

    @field_validator("smtp_username", "smtp_password")
    @classmethod
    def _unset_when_empty(cls, value: str | None) -> str | None:
        """An empty value (SMTP_USERNAME= in a compose file or a chart) means no AUTH, not AUTH as ""."""
        return value or None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = 30.0
    smtp_connections: int = Field(default=16, ge=1)
    send_rate_per_second: float = Field(default=0, ge=0, description="all emails; 0: no limit")
    domain_rate_per_second: float = Field(default=0, ge=0, description="per recipient domain; 0: no limit")
    domain_concurrency: int = Field(default=16, ge=0, description="SMTP transactions at once per domain")
    delivery_chunk: int = Field(default=50, ge=1, description="sends claimed and recorded together")
    mail_from: str = "Campaigns <campaigns@localhost>"
    smtp_retry_initial_seconds: float = 300
    smtp_retry_max_seconds: float = 3600
    smtp_retry_lifetime_seconds: float = 259200

    @property
    def envelope_sender(self) -> str:
        return _address_of(self.mail_from)


@lru_cache(maxsize=16)  # asked for every email
def _address_of(mail_from: str) -> str:
    return parseaddr(mail_from)[1]
