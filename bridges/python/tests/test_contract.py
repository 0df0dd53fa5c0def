"""The Python SDK and the Rust protocol types agree: the SDK reads the contract that the Rust
types generate (``protocol.json``), and these tests fail as soon as either side drifts."""

import json
import os

import stepwire_bridge as sw
from conftest import REPO
from stepwire_bridge import contract, errors, server


def test_the_package_copy_is_the_generated_file():
    with open(os.path.join(REPO, "schemas", "protocol.json"), encoding="utf-8") as f:
        generated = json.load(f)
    assert contract.CONTRACT == generated, "run `cargo run -p stepwire-runtime -- schema` to refresh the copy"


def test_every_error_code_has_its_constant_and_no_other():
    constants = {name: value for name, value in vars(errors).items() if name.isupper() and isinstance(value, int)}
    declared = {name.upper(): code for name, code in contract.ERROR_CODES.items()}
    assert constants == declared


def test_every_environment_request_is_served():
    served = {server.ENV_TASKS, server.ENV_RESET, server.ENV_STEP, server.ENV_ADMISSIBLE, server.ENV_EXPERT}
    assert served == set(contract.environment_requests())


def test_the_protocol_version_is_the_contracts():
    assert sw.PROTOCOL_VERSION == contract.CONTRACT["protocolVersion"]
    assert server.SUPPORTED_PROTOCOL_VERSIONS == contract.CONTRACT["supportedVersions"]


def test_an_undeclared_method_is_refused():
    try:
        contract.method("env/teleport")
    except KeyError as e:
        assert "env/teleport" in str(e)
    else:
        raise AssertionError("an undeclared method was accepted")
