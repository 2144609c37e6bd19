"""marshmallow schemas: validation in, serialisation out, and the source of the OpenAPI document."""
