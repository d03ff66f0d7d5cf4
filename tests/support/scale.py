"""How big the fault scenarios run: small in `make test`, full in `make chaos`
(FAULT_SCALE=full), so the suite stays quick and the full figures are one command away."""

import os

FULL = os.environ.get("FAULT_SCALE") == "full"


def sized(small: int, full: int) -> int:
    return full if FULL else small
