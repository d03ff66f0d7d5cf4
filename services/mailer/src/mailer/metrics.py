"""What the mailer counts for ops dashboards, served at /metrics with servicekit's."""

from prometheus_client import Counter

from servicekit.health import REGISTRY

SENDS = Counter("mailer_sends", "Sends handled, by outcome", ["status"], registry=REGISTRY)
RESENT_AFTER_CRASH = Counter(
    "mailer_resent_after_crash", "Sends found mid-transaction after a crash and sent again", registry=REGISTRY
)
TEST_EMAILS = Counter("mailer_test_emails", "Test emails of an email step (email.test), by outcome: sent or"
                      " rejected (a template that cannot render, an address refused for good)", ["outcome"],
                      registry=REGISTRY)
