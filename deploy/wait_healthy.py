"""Waits until a URL answers 200: `python deploy/wait_healthy.py URL SECONDS`."""

import sys
import time
import urllib.request

url, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.3)
print(f"{url} did not answer 200 within {seconds:.0f}s", file=sys.stderr)
sys.exit(1)
