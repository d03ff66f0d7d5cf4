"""The settings every service shares; each service extends this model with its own."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql://campaigns:campaigns@127.0.0.1:55432/campaigns"
    kafka_bootstrap_servers: str = "127.0.0.1:59092"
    kafka_topic_prefix: str = ""
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    db_pool_size: int = Field(default=10, ge=1)
