"""The generated types follow the schemas (and so the Rust protocol types)."""

from __future__ import annotations

import json
import typing

from conftest import CONTRACT, SCHEMAS
from stepwire_host import codegen, protocol
from stepwire_host.errors import ProtocolError


def test_the_generated_module_is_current():
    # Fails when `stepwire schema` changed the schemas and nobody ran
    # `python -m stepwire_host.codegen` (from hosts/python): the types would have drifted.
    assert codegen.generate(SCHEMAS) == codegen.OUTPUT.read_text(), "run `python -m stepwire_host.codegen`"
    assert codegen.main(["--check"]) == 0


def test_a_changed_schema_changes_the_module(tmp_path):
    for path in SCHEMAS.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    schema = json.loads((tmp_path / "agent.act.result.json").read_text())
    schema["properties"]["confidence"] = {"type": "number"}
    (tmp_path / "agent.act.result.json").write_text(json.dumps(schema))
    text = codegen.generate(tmp_path)
    assert "confidence: NotRequired[float]" in text and text != codegen.OUTPUT.read_text()


def test_every_error_code_has_its_class():
    codes = {e["code"]: e["name"] for e in CONTRACT["errorCodes"]}
    assert set(protocol.ERROR_CLASSES) == set(codes)
    for code, cls in protocol.ERROR_CLASSES.items():
        assert issubclass(cls, ProtocolError) and cls.code == code and cls.name == codes[code]
    error = ProtocolError.from_wire({"code": -31003, "message": "no such task", "data": {"tasks": ["a"]}})
    assert isinstance(error, protocol.UnknownTaskError) and error.data == {"tasks": ["a"]}
    unknown = ProtocolError.from_wire({"code": -31999, "message": "new"})
    assert type(unknown) is ProtocolError and unknown.code == -31999


def test_types_carry_the_schemas_fields():
    hints = typing.get_type_hints(protocol.AgentStepParams, include_extras=True)
    assert set(hints) == {"state", "observation", "admissibleActions", "sampling", "_meta"}
    assert protocol.AgentStepParams.__required_keys__ == {"state", "observation"}
    assert set(protocol.METHODS) == {m["name"] for m in CONTRACT["methods"]}
    assert protocol.PROTOCOL_VERSION == CONTRACT["protocolVersion"]
