"""`make demo`: a small campaign on the running system, and the mail it sent.

Creates three contacts (two opted in), a segment, a two-step flow and a campaign starting
now; activates it; waits until it completes; prints what reached the mail catcher."""

import json
import mailbox
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

GATEWAY = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}"
STATE = Path(os.environ.get("STATE_DIR", ".local/dev"))
MAIL = STATE / "mail"
_INSTANCE_KEY = STATE / "api-key"  # made by deploy/services.sh when API_KEYS is not given
KEY = (os.environ.get("API_KEYS") or (_INSTANCE_KEY.read_text() if _INSTANCE_KEY.exists() else "")).split(",")[0].strip()


def call(method: str, path: str, body=None) -> dict:
    request = urllib.request.Request(GATEWAY + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    if KEY:
        request.add_header("Authorization", f"Bearer {KEY}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path} -> {error.code}: {error.read().decode()}")


def main() -> None:
    tag = uuid.uuid4().hex[:6]
    for name, opted_in in (("Ada", True), ("Grace", True), ("Olly", False)):
        call("POST", "/api/contacts", {"email": f"{name.lower()}.{tag}@example.com", "first_name": name,
                                       "marketing_opt_in": opted_in, "attributes": {"demo": tag}})
    segment = call("POST", "/api/segments", {"name": f"demo {tag}", "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.demo", "op": "eq", "value": tag}]}})
    flow = call("POST", "/api/flows", {"name": f"demo {tag}", "steps": [
        {"type": "SEND_EMAIL", "config": {"subject": "Welcome, {{ first_name }}", "text": "Hello {{ first_name }}!"}},
        {"type": "WAIT", "config": {"seconds": 5}},
        {"type": "SEND_EMAIL", "config": {"subject": "Still with us, {{ first_name }}?", "text": "A second note."}},
    ]})
    campaign = call("POST", "/api/campaigns", {
        "name": f"demo {tag}", "segment_id": segment["id"], "flow_id": flow["id"],
        "start_date": datetime.now(UTC).date().isoformat(), "start_time_of_day": "00:00"})
    call("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})
    print(f"campaign {campaign['id']} active; waiting for it to complete ...")
    deadline = time.monotonic() + 60
    while call("GET", f"/api/campaigns/{campaign['id']}")["status"] != "completed":
        if time.monotonic() > deadline:
            sys.exit("the campaign did not complete within 60s: see the logs")
        time.sleep(0.5)
    print("stats:", json.dumps(call("GET", f"/api/campaigns/{campaign['id']}/stats")))
    print(f"mail received in {MAIL}:")
    for message in mailbox.Maildir(MAIL, create=False):
        if tag in (message["To"] or ""):
            print(f"  to {message['To']}: {message['Subject']}")


if __name__ == "__main__":
    main()
