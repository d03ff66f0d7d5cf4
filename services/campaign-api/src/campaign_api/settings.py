from pydantic import Field

from servicekit.settings import TrackingSettings


class Settings(TrackingSettings):
    """campaign-api's environment; TRACKING_SECRET, PUBLIC_BASE_URL and ENVIRONMENT are
    TrackingSettings' (shared with the mailer)."""

    gateway_port: int = 8080
    segment_svc_url: str = "http://127.0.0.1:8081"
    flow_engine_url: str = "http://127.0.0.1:8082"
    api_keys: str = Field(default="", description="comma-separated keys; empty leaves the API open (development)")
    upstream_timeout_seconds: float = 30.0

    @property
    def keys(self) -> list[str]:
        """The API keys accepted; none: the API is open."""
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]
