"""The settings every service shares; each service extends this model with its own."""

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql://campaigns:campaigns@127.0.0.1:15432/campaigns"
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_topic_prefix: str = ""
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    db_pool_size: int = Field(default=10, ge=1)


def check_replication(replication_factor: int, min_insync_replicas: int) -> None:
    """A topic whose min.insync.replicas exceeds its replicas refuses every acks=all write."""
    if min_insync_replicas > replication_factor:
        raise ValueError(
            f"KAFKA_MIN_INSYNC_REPLICAS ({min_insync_replicas}) cannot exceed KAFKA_REPLICATION_FACTOR "
            f"({replication_factor}): no write with acks=all would ever succeed"
        )


class TopicSettings(CommonSettings):
    """What `python -m servicekit.topics` creates topics with: one replica and one in-sync
    replica by default (a single broker); on a cluster of three, e.g. 3 and 2, so that
    acks=all survives the loss of one broker."""

    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _replicas_can_be_in_sync(self) -> "TopicSettings":
        check_replication(self.kafka_replication_factor, self.kafka_min_insync_replicas)
        return self


DEFAULT_TRACKING_SECRET = "change-me"


class TrackingSettings(CommonSettings):
    """What signs and checks the links in emails (the mailer and campaign-api share it).
    The default secret is public: anyone could forge an unsubscribe or a click with it,
    so it is refused unless ENVIRONMENT=development."""

    environment: str = "production"
    public_base_url: str = "http://127.0.0.1:8080"
    tracking_secret: str = DEFAULT_TRACKING_SECRET

    @model_validator(mode="after")
    def _secret_is_not_the_default(self) -> "TrackingSettings":
        if self.tracking_secret == DEFAULT_TRACKING_SECRET and self.environment != "development":
            raise ValueError(
                "TRACKING_SECRET is the default, which anyone can read: set a secret of your own, or "
                "ENVIRONMENT=development to run with it on a machine of your own"
            )
        if len(self.tracking_secret) < 8:
            raise ValueError("TRACKING_SECRET must be at least 8 characters")
        return self
