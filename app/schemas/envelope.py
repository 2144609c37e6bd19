"""The SPEC section 2 envelopes, as schemas, so the OpenAPI document shows what clients get."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema, fields


def constant(value: bool | str) -> fields.Constant:
    """A field that is always present with one value, typed as such in the OpenAPI document."""
    openapi_type = "boolean" if isinstance(value, bool) else "string"
    return fields.Constant(value, required=True, metadata={"type": openapi_type, "enum": [value]})


class ErrorEnvelopeSchema(Schema):
    success = constant(False)
    status = constant("error")
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    # Present on every error; null only if the failure came before the request id was set.
    request_id = fields.String(required=True, allow_none=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Per-field messages, for validation_error only."},
    )


class PageMetaSchema(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)


@cache
def success_envelope(data_schema: type[Schema]) -> type[Schema]:
    """`{"success": true, "data": <data_schema>}`; views return `{"data": obj}`."""
    name = data_schema.__name__.removesuffix("Schema") + "Response"
    return Schema.from_dict(
        {
            "success": constant(True),
            "data": fields.Nested(data_schema, required=True),
        },
        name=name,
    )


@cache
def page_envelope(item_schema: type[Schema]) -> type[Schema]:
    """`{"success": true, "data": [...], "meta": {...}}` for paginated lists."""
    name = item_schema.__name__.removesuffix("Schema") + "PageResponse"
    return Schema.from_dict(
        {
            "success": constant(True),
            "data": fields.List(fields.Nested(item_schema), required=True),
            "meta": fields.Nested(PageMetaSchema, required=True),
        },
        name=name,
    )
