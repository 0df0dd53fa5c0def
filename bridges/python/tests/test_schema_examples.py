"""Every example under schemas/examples/<schema>/ validates against schemas/<schema>.json, with a
validator outside Rust (Python jsonschema, Draft 2020-12)."""
import json

import pytest
from conftest import SCHEMAS, schemas

EXAMPLES = sorted((SCHEMAS / "examples").rglob("*.json")) if (SCHEMAS / "examples").is_dir() else []


def schema_name(path):
    # schemas/examples/<schema name>/<example>.json -> <schema name>
    return path.relative_to(SCHEMAS / "examples").parts[0]


def test_there_are_examples_for_every_schema():
    names = schemas().names()
    assert EXAMPLES, "no examples under schemas/examples"
    covered = {schema_name(p) for p in EXAMPLES}
    assert set(names) <= covered, f"schemas without an example: {sorted(set(names) - covered)}"
    assert covered <= set(names), f"example folders without a schema: {sorted(covered - set(names))}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(SCHEMAS / "examples")))
def test_example_validates(path):
    schemas().validate(schema_name(path), json.loads(path.read_text(encoding="utf-8")))
