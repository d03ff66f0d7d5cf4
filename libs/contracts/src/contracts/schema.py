"""Documents generated from the event models, never written by hand:

    python -m contracts.schema docs    # docs/asyncapi.yaml and docs/schemas/*.schema.json

The AsyncAPI document is JSON, which is YAML too."""

import json
import sys
from pathlib import Path

from contracts.events import EVENT_TYPES
from contracts.topics import ALL_TOPICS, dlq_of


def asyncapi() -> dict:
    specs = {spec.name: spec for spec in ALL_TOPICS}
    channels, messages, operations = {}, {}, {}
    for event_type in EVENT_TYPES:
        name = event_type.event_type_name()
        spec = specs[event_type.topic]
        channels[name] = {
            "address": event_type.topic,
            "description": f"key: {event_type.key_field}; {spec.partitions} partitions"
            + ("; compacted, deletes are tombstones" if spec.compacted else "")
            + f"; what cannot be processed goes to {dlq_of(event_type.topic)}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {
            "name": event_type.topic,
            "title": event_type.__name__,
            "summary": (event_type.__doc__ or "").strip().splitlines()[0] if event_type.__doc__ else event_type.topic,
            "contentType": "application/json",
            "headers": {"type": "object", "properties": {
                "event_type": {"type": "string"}, "correlation_id": {"type": "string"}}},
            "payload": event_type.model_json_schema(ref_template="#/components/schemas/{model}"),
        }
        operations[f"publish_{name}"] = {"action": "send", "channel": {"$ref": f"#/channels/{name}"}}
    schemas = {}
    for message in messages.values():
        schemas.update(message["payload"].pop("$defs", {}))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Campaign platform events", "version": "1.0.0",
                 "description": "Every topic of the system; generated from libs/contracts."},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def export(directory: Path) -> list[Path]:
    (directory / "schemas").mkdir(parents=True, exist_ok=True)
    written = [directory / "asyncapi.yaml"]
    written[0].write_text(json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n")
    for event_type in EVENT_TYPES:
        path = directory / "schemas" / f"{event_type.topic}.schema.json"
        path.write_text(json.dumps(event_type.model_json_schema(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")):
        print(path)
