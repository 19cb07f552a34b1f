"""Validation of rendered documents against the formats' official JSON Schemas.

SARIF 2.1.0 and SPDX 2.3 schemas ship in ``garrison/report/schemas`` (see its ``SOURCE``); CycloneDX 1.6
uses the copy bundled in cyclonedx-python-lib, in its strict form (no unknown properties).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from garrison.core.errors import ConfigError

_SCHEMA_FILES = {"sarif": "sarif-schema-2.1.0.json", "spdx-json": "spdx-schema-2.3.json"}


@lru_cache(maxsize=4)
def _schema(fmt: str) -> dict[str, Any]:
    text = resources.files("garrison.report").joinpath("schemas", _SCHEMA_FILES[fmt]).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=4)
def _validator(fmt: str) -> Any:
    import jsonschema

    schema = _schema(fmt)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=1)
def _cyclonedx_validator() -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def _where(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path)


def validate(document: str | dict[str, Any], fmt: str) -> list[str]:
    """Schema errors of ``document`` in format ``fmt`` (``cyclonedx``, ``spdx-json``, ``sarif``), one line each."""
    if fmt == "cyclonedx":
        text = document if isinstance(document, str) else json.dumps(document)
        errors = _cyclonedx_validator().validate_str(text, all_errors=True)
        if errors is None:
            return []
        return sorted(f"{_where(e.data.absolute_path)}: {e.data.message}" for e in errors)
    if fmt not in _SCHEMA_FILES:
        raise ConfigError(f"no schema for format {fmt!r}; known: cyclonedx, {', '.join(sorted(_SCHEMA_FILES))}")
    data = json.loads(document) if isinstance(document, str) else document
    return sorted(f"{_where(e.absolute_path)}: {e.message}" for e in _validator(fmt).iter_errors(data))
