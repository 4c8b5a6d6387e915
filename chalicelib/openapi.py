"""The OpenAPI 3 document, generated from the routes' declared request and response models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from chalicelib.http import Access, Operation

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
# Every route may answer 429 (the stage's throttling) and 503 (a backing table or queue missing).
_ERRORS_BY_ACCESS = {
    Access.PUBLIC: ["400", "413", "422", "429", "503"],
    Access.USER: ["400", "401", "404", "413", "422", "429", "503"],
    Access.ADMIN: ["400", "401", "403", "404", "409", "413", "422", "429", "503"],
}
_DESCRIPTIONS = {
    "400": "Bad JSON", "401": "No or bad token, API key or password", "403": "Wrong role", "404": "Not found or not yours",
    "409": "Conflict", "413": "Body too large", "415": "Not the content type the route takes", "422": "Invalid fields", "429": "Throttled",
    "503": "A backing table or queue is unavailable",
}


def document(operations: list[Operation], title: str = "Energy Management System API",
             version: str = "1.0.0") -> dict[str, Any]:
    """The whole document, with every model under components/schemas."""
    # What a client sends is described as validated, what it gets as serialized (every field present).
    models: set[tuple[type[BaseModel], JsonSchemaMode]] = set()
    for op in operations:
        models.update((m, "validation") for m in (op.request, op.query) if m is not None)
        if op.response is not None:
            models.add((op.response, "serialization"))
    ordered = sorted(models, key=lambda pair: (pair[0].__name__, pair[1]))
    _, schema = models_json_schema(ordered, ref_template="#/components/schemas/{model}",
                                   schema_generator=_SchemaGenerator)
    schemas = dict(schema.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/api"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": paths,
    }


def _operation(op: Operation) -> dict[str, Any]:
    ref = "#/components/schemas/{}"
    entry: dict[str, Any] = {"operationId": op.name, "summary": op.summary, "tags": list(op.tags)}
    if op.access != Access.PUBLIC:
        entry["security"] = [{"bearer": []}]
        if op.access == Access.ADMIN:
            entry["description"] = "Admins only."
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        for name, field in op.query.model_fields.items():
            sent_as = field.alias or name  # what the client writes in the query string
            parameters.append({"name": sent_as, "in": "query", "required": field.is_required(),
                               "schema": _field_schema(op.query, sent_as)})
    if parameters:
        entry["parameters"] = parameters
    if op.request is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref.format(op.request.__name__)}}},
        }
    elif op.accepts is not None:
        entry["requestBody"] = {"required": True, "content": {op.accepts: {"schema": {"type": "string"}}}}
    success: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        success["content"] = {op.content_type: {"schema": {"$ref": ref.format(op.response.__name__)}}}
    elif op.content_type != "application/json":
        success["content"] = {op.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success}
    for code in sorted({*_ERRORS_BY_ACCESS[op.access], *map(str, op.errors)}):
        responses[code] = {
            "description": _DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": ref.format("Error")}}},
        }
    entry["responses"] = responses
    return entry


class _SchemaGenerator(GenerateJsonSchema):
    """A response always carries every field (defaults included), so each is required in it."""

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


def _field_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    properties = model.model_json_schema().get("properties", {})
    return dict(properties.get(name, {"type": "string"}))
