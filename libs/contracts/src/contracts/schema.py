"""Writes the JSON Schema of every event: `python -m contracts.schema DIR`."""

import json
import sys
from pathlib import Path

from contracts.events import EVENT_TYPES


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in EVENT_TYPES:
        path = directory / f"{event_type.topic}.schema.json"
        path.write_text(json.dumps(event_type.model_json_schema(), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
