"""The ``openapi`` marker: every route of the API as Markdown, from the app's own ``/openapi.json``.

The app is built as the tests build it (``api.create_app`` with an empty run store): the
description comes from the views' docstrings, so neither a deployed model nor TensorFlow is needed,
and a route added to the API appears in the docs at the next build.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from render import table

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def openapi_spec(root: Path) -> dict:
    """The API's OpenAPI description, as ``GET /openapi.json`` answers it."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import api  # the repository's, once root is importable

    with tempfile.TemporaryDirectory() as empty_store:
        app = api.create_app({"ARTIFACTS_DIR": empty_store, "TESTING": True})
        answer = app.test_client().get("/openapi.json")
        if answer.status_code != 200:
            raise ValueError(f"/openapi.json answered {answer.status_code}")
        return answer.get_json()


def resolved(spec: dict, item: dict) -> dict:
    """``item`` itself, or the component its ``$ref`` points to."""
    while "$ref" in item:
        node = spec
        for key in item["$ref"].removeprefix("#/").split("/"):
            node = node[key]
        item = node
    return item


def schema_text(spec: dict, schema: dict | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    text = schema.get("type", "")
    if schema.get("format") == "binary":
        text = "binary"
    if "enum" in schema:
        text += ": " + ", ".join(f"`{value}`" for value in schema["enum"])
    bounds = [f"{word} {schema[key]}" for key, word in (("minimum", "min"), ("maximum", "max"), ("default", "default"))
              if key in schema]
    if bounds:
        text += f" ({', '.join(bounds)})"
    return text


def content_text(spec: dict, content: dict | None) -> str:
    """``application/json`` (Prediction), ``image/png`` (binary): what a body may be."""
    return "; ".join(f"`{kind}` ({schema_text(spec, body.get('schema'))})" for kind, body in (content or {}).items())


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    """(METHOD, path, operation) for every operation, in the order of the paths."""
    return [(method.upper(), path, operation) for path, item in spec["paths"].items()
            for method, operation in item.items() if method in HTTP_METHODS]


def route_section(spec: dict, method: str, path: str, operation: dict) -> str:
    parts = [f"### `{method} {path}`", operation.get("summary", "")]
    if operation.get("description"):
        parts.append(operation["description"])
    parameters = [resolved(spec, p) for p in operation.get("parameters", [])]
    if parameters:
        parts.append(table(["parameter", "in", "required", "value", "description"], [
            [f"`{p['name']}`", p["in"], "yes" if p.get("required") else "no", schema_text(spec, p.get("schema")),
             p.get("description", "")] for p in parameters]))
    if "requestBody" in operation:
        parts.append("Request body: " + content_text(spec, resolved(spec, operation["requestBody"]).get("content")))
    responses = [(code, resolved(spec, response)) for code, response in operation.get("responses", {}).items()]
    parts.append(table(["status", "meaning", "body"], [
        [f"`{code}`", response.get("description", ""), content_text(spec, response.get("content"))]
        for code, response in responses]))
    return "\n\n".join(part for part in parts if part)


def openapi_markdown(root: Path) -> str:
    """A table of the routes, then a section per route with its parameters and answers."""
    spec = openapi_spec(root)
    routes = operations(spec)
    overview = table(["method", "path", "what it answers"],
                     [[method, f"`{path}`", operation.get("summary", "")] for method, path, operation in routes])
    sections = [route_section(spec, *route) for route in routes]
    source = (f"Generated at build time from the app's own `/openapi.json` (OpenAPI {spec['openapi']}, "
              f"\"{spec['info']['title']}\" {spec['info']['version']}).")
    return "\n\n".join([overview, source, *sections])
