"""Validate answers against the vendored Telnyx OpenAPI extract in tests/contracts/ (the wire contract)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent / "contracts" / "telnyx-conferences-openapi.yml"
SPEC_URI = "urn:telnyx-openapi"


@functools.cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@functools.cache
def registry() -> Registry:
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def response_schema_pointer(path: str, method: str, status: int) -> str | None:
    """JSON pointer of the schema the spec gives for this answer (following a $ref'd response)."""
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    key = str(status) if str(status) in responses else "default"
    if key not in responses:
        if status >= 400:  # an error the operation does not list still has Telnyx's error shape
            return f"{SPEC_URI}#/components/schemas/call-control_Errors"
        raise AssertionError(f"{method} {path} has no {status} response in the spec")
    response = responses[key]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = spec()["components"]["responses"][name]
        base = f"/components/responses/{_escape(name)}"
    else:
        base = f"/paths/{_escape(path)}/{method.lower()}/responses/{key}"
    if "content" not in response:
        return None
    return f"{SPEC_URI}#{base}/content/application~1json/schema"


def assert_matches_spec(path: str, method: str, status: int, body: Any) -> None:
    pointer = response_schema_pointer(path, method, status)
    if pointer is None:
        assert body in (None, b"", ""), f"{method} {path} {status} must have no body"
        return
    validator = OAS31Validator({"$ref": pointer}, registry=registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


@functools.cache
def webhook_schema_pointers() -> dict[str, str]:
    """event_type → JSON pointer of the `data` schema the spec's `webhooks:` section gives for it."""
    pointers: dict[str, str] = {}
    schemas = spec()["components"]["schemas"]
    for webhook in spec()["webhooks"].values():
        envelope = webhook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        # Most are {"data": ...} envelopes; floor.changed is given flat (the event itself).
        data_ref = schemas[envelope]["properties"].get("data", {}).get("$ref")
        data_name = data_ref.rsplit("/", 1)[-1] if data_ref else envelope
        for event_type in schemas[data_name]["properties"]["event_type"]["enum"]:
            pointers[event_type] = f"{SPEC_URI}#/components/schemas/{_escape(data_name)}"
    return pointers


def assert_webhook_matches_spec(document: dict[str, Any]) -> None:
    """A webhook body's `data` validates against the spec's schema for its event type."""
    event_type = document["data"]["event_type"]
    pointer = webhook_schema_pointers().get(event_type)
    assert pointer is not None, f"the spec lists no webhook {event_type}"
    validator = OAS31Validator({"$ref": pointer}, registry=registry())
    errors = sorted(validator.iter_errors(document["data"]), key=lambda e: list(e.path))
    assert not errors, f"{event_type}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
