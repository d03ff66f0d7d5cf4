"""Lays out the Kubernetes JSON schemas of PyPI's kubernetes-validate for kubeconform,
offline: `python deploy/kubernetes_schemas.py SOURCE_DIR TARGET_DIR` (one version's folder).

kubernetes-validate names each schema by kubeconform's own template (deployment-apps-v1.json)
but gives it an `$id` under https://kubernetes.io/api/ and points at the shared definitions
as "/api/_definitions.json": resolved against that `$id`, kubeconform would fetch them from
the web. Without the `$id` and with the reference made relative, it reads _definitions.json
from beside the schema.
"""

import json
import sys
from pathlib import Path

SHARED = "/api/_definitions.json#"


def localised(node):
    if isinstance(node, dict):
        return {
            key: (value.replace(SHARED, "_definitions.json#", 1) if key == "$ref" and isinstance(value, str)
                  else localised(value))
            for key, value in node.items()
            if key != "$id"
        }
    if isinstance(node, list):
        return [localised(item) for item in node]
    return node


def main(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    schemas = sorted(source.glob("*.json"))
    if not schemas:
        sys.exit(f"no schemas in {source}")
    for schema in schemas:
        (target / schema.name).write_text(json.dumps(localised(json.loads(schema.read_text()))))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
