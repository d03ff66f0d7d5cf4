from pathlib import Path

from pydantic import Field

from servicekit.settings import TrackingSettings

# services/frontend/dist of this checkout (`make up` builds it there).
_APP_BUILD = Path(__file__).resolve().parents[3] / "frontend" / "dist"


class Settings(TrackingSettings):
    """campaign-api's environment; TRACKING_SECRET, PUBLIC_BASE_URL and ENVIRONMENT are
    TrackingSettings' (shared with the mailer)."""

    gateway_port: int = 8080
    segment_svc_url: str = "http://127.0.0.1:8081"
    flow_engine_url: str = "http://127.0.0.1:8082"
    scheduler_url: str = Field(default="http://127.0.0.1:8083", description="its /healthz, for GET /api/status")
    mailer_url: str = Field(default="http://127.0.0.1:8084", description="its /healthz, for GET /api/status")
    api_keys: str = Field(default="", description="comma-separated keys; empty leaves the API open (development)"
                                                  " while no account exists")
    upstream_timeout_seconds: float = 30.0
    session_hours: float = Field(default=12.0, gt=0, description="how long a sign-in lasts")
    frontend_dist: Path = Field(default=_APP_BUILD, description="the built web app, served at /")

    @property
    def keys(self) -> list[str]:
        """The API keys accepted; none: the API is open."""
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]
