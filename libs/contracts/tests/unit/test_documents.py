import json
from pathlib import Path

from contracts.schema import asyncapi

DOCS = Path(__file__).parents[4] / "docs"


def test_the_committed_asyncapi_document_matches_the_contracts():
    committed = json.loads((DOCS / "asyncapi.yaml").read_text())
    assert committed == json.loads(json.dumps(asyncapi())), "run `make docs` and commit docs/"
