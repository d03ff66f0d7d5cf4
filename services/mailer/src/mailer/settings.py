from typing import Literal

from pydantic import Field

from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8084
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = 30.0
    smtp_connections: int = Field(default=8, ge=1)
    mail_from: str = "Campaigns <campaigns@localhost>"
    public_base_url: str = "http://127.0.0.1:8080"
    tracking_secret: str = "change-me"
    smtp_retry_initial_seconds: float = 300
    smtp_retry_max_seconds: float = 3600
    smtp_retry_lifetime_seconds: float = 259200
