"""The OpenAPI document: title, security scheme, tags, the docs UI at /schema and the JSON at /schema/openapi.json.

``StructSchema`` documents msgspec structs whose fields default to a list or a struct (Litestar's own plugin
tests such defaults for membership in a set, which fails for unhashable values).

Must not import: redis, the poller, the dispatcher.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme, Tag
from litestar.plugins import OpenAPISchemaPlugin
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

from notifier.api.auth import SECURITY_SCHEME

VERSION = "0.1.0"

_TAGS = [
    Tag(name="health", description="Probes and metrics; no auth."),
    Tag(name="subscriptions", description="Who gets notified of what. URLs are always shown masked."),
    Tag(name="events", description="Transitions detected by the poller."),
    Tag(name="deliveries", description="Notification attempts, failures and dead letters."),
]


class StructSchema(OpenAPISchemaPlugin):
    """The schema of a msgspec struct: its fields, their defaults, and which are required."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and field_definition.is_subclass_of(msgspec.Struct)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        info = msgspec.inspect.type_info(field_definition.type_)
        assert isinstance(info, msgspec.inspect.StructType)
        properties: dict[str, FieldDefinition] = {}
        for f in info.fields:
            kwargs: dict[str, Any] = {}
            if kwarg := kwarg_definition_from_field(f)[0]:
                kwargs["kwarg_definition"] = kwarg
            default = f.default
            if default is msgspec.NODEFAULT or default is msgspec.UNSET:
                default = Empty
            elif isinstance(default, msgspec.Struct):
                default = msgspec.to_builtins(default)
            properties[f.encode_name] = FieldDefinition.from_annotation(
                annotation=hints[f.name], name=f.encode_name, default=default, **kwargs
            )
        required = [f.encode_name for f in info.fields if f.required]
        if info.tag_field:
            properties[info.tag_field] = FieldDefinition.from_annotation(Literal[info.tag])
            required.append(info.tag_field)
        schema: Schema = schema_creator.create_component_schema(
            field_definition, required=sorted(required), property_fields=properties
        )
        return schema


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="genviral-notifier",
        version=VERSION,
        description=(
            "Watches the Genviral Partner API and notifies through apprise. Admin routes need "
            "`Authorization: Bearer <NOTIFIER_ADMIN_TOKEN>`. Errors are JSON: "
            '`{"status_code", "detail", "extra"}`.'
        ),
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(path="/openapi.json")],
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http", scheme="bearer", description="NOTIFIER_ADMIN_TOKEN", bearer_format="opaque"
                )
            }
        ),
        tags=_TAGS,
        use_handler_docstrings=False,
    )
