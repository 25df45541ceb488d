"""A small JSON Schema (draft 2020-12) validator for the schemas brainbench publishes.

brainbench validates its portable result files against ``core/store/schemas/result-v1.schema.json``
— the file it publishes, so the schema is the single definition — without depending on the
``jsonschema`` package. It implements the keywords that schema uses (:data:`SUPPORTED`) with
their 2020-12 meaning, reports the first violation as one phrase that names where it is
(``rows[2].n_units is -1, below the minimum 0``), and refuses schemas that use any other
keyword (:func:`unsupported_keywords`), so a schema edit cannot be silently ignored.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
#: keywords that only annotate
ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "examples", "default"}
#: keywords that validate, as implemented here
SUPPORTED = ANNOTATIONS | {"$ref", "$defs", "type", "properties", "required", "additionalProperties", "items",
                           "enum", "const", "pattern", "minimum", "maximum", "minLength", "minItems",
                           "minProperties", "uniqueItems"}
#: keywords whose value is a map of subschemas, or one subschema
_MAPS, _ONE = {"properties", "$defs"}, {"items", "additionalProperties"}
_TYPES = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
          "integer": "an integer", "boolean": "true or false", "null": "null"}


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The published schema ``core/store/schemas/<name>.schema.json``, parsed."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def unsupported_keywords(schema: Any) -> set[str]:
    """Keywords anywhere in ``schema`` that this validator does not implement (empty: it is fully checked)."""
    found: set[str] = set()
    if not isinstance(schema, dict):
        return found
    for key, value in schema.items():
        if key not in SUPPORTED:
            found.add(key)
        elif key in _MAPS:
            for sub in value.values():
                found |= unsupported_keywords(sub)
        elif key in _ONE:
            found |= unsupported_keywords(value)
    return found


def first_problem(document: Any, schema: dict[str, Any]) -> str | None:
    """The first way ``document`` breaks ``schema``, as a phrase naming the place; None when it is valid."""
    return _check(document, schema, schema, "")


def _where(path: str) -> str:
    return path or "the file"


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"object": dict, "array": list, "string": str, "boolean": bool,
                              "null": type(None)}[kind])


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python's ``True == 1`` notwithstanding)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _resolve(root: dict, ref: str) -> dict:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref are supported, not {ref!r}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _description(root: dict, schema: dict) -> str:
    if "description" in schema:
        return schema["description"]
    return _resolve(root, schema["$ref"]).get("description", "") if "$ref" in schema else ""


def _check(value: Any, schema: dict, root: dict, path: str) -> str | None:
    where = _where(path)
    if "$ref" in schema:
        problem = _check(value, _resolve(root, schema["$ref"]), root, path)
        if problem:
            return problem
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            return f"{where} is {_show(value)}, not {' or '.join(_TYPES[k] for k in kinds)}"
    if "const" in schema and not _same(value, schema["const"]):
        return f"{where} is {_show(value)}, not {json.dumps(schema['const'])}"
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        return f"{where} is {_show(value)}, not one of {', '.join(json.dumps(v) for v in schema['enum'])}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{where} is empty"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{where} is blank" if schema["pattern"] == r"\S" else (
                f"{where} is {_show(value)}, which does not match the pattern {schema['pattern']}")
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where} is {value}, below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where} is {value}, above the maximum {schema['maximum']}"
    if isinstance(value, list):
        return _check_list(value, schema, root, path)
    if isinstance(value, dict):
        return _check_object(value, schema, root, path)
    return None


def _check_list(value: list, schema: dict, root: dict, path: str) -> str | None:
    if len(value) < schema.get("minItems", 0):
        return f"{_where(path)} has {len(value)} items, fewer than {schema['minItems']}"
    if schema.get("uniqueItems"):
        seen = []
        for item in value:
            if item in seen:
                return f"{_where(path)} lists {_show(item)} twice"
            seen.append(item)
    for i, item in enumerate(value):
        problem = _check(item, schema.get("items", {}), root, f"{path}[{i}]")
        if problem:
            return problem
    return None


def _check_object(value: dict, schema: dict, root: dict, path: str) -> str | None:
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            meaning = _description(root, properties.get(name, {}))
            return f"{_where(path)} lacks {name!r}" + (f" ({meaning})" if meaning else "")
    if len(value) < schema.get("minProperties", 0):
        return f"{_where(path)} is empty"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        inner = f"{path}.{key}" if path else key
        if key in properties:
            problem = _check(item, properties[key], root, inner)
        elif extra is False:
            problem = f"{_where(path)} has an unknown key {key!r}"
        else:
            problem = _check(item, extra, root, inner) if isinstance(extra, dict) else None
        if problem:
            return problem
    return None


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else ("an object" if isinstance(value, dict)
                                                                          else "a list")
    return text if len(text) <= 60 else text[:57] + "..."
