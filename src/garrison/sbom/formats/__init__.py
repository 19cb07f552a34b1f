"""SBOM documents read back into packages: CycloneDX JSON (1.2-1.7) and SPDX JSON (2.1-2.3).

:func:`decode_sbom` sniffs the format from the content, never from the file name, so
``garrison scan sbom FILE`` works on any of them. XML and tag-value documents are recognised and
refused with a clear message.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError, NotFoundError
from garrison.core.limits import DEFAULT_LIMITS
from garrison.model import Artifact, OperatingSystem, Package

logger = logging.getLogger(__name__)

__all__ = ["decode_sbom", "decode_sbom_bytes"]


def decode_sbom(path: Path | str) -> tuple[Artifact, list[Package], OperatingSystem | None]:
    """Read the SBOM at ``path``: the artifact it describes, its packages and its OS (if it names one)."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError("no such file", input_name=name) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", input_name=name) from None
    if size > DEFAULT_LIMITS.max_file_bytes:
        raise InputError(f"SBOM is {size} bytes, over the {DEFAULT_LIMITS.max_file_bytes}-byte limit", input_name=name)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, not an SBOM document", input_name=name) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", input_name=name) from None
    return decode_sbom_bytes(data, name)


def decode_sbom_bytes(data: bytes, name: str) -> tuple[Artifact, list[Package], OperatingSystem | None]:
    """Decode an SBOM held in memory; ``name`` is used in error messages and as the artifact name."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", input_name=name) from None
    head = text.lstrip()[:512]
    if head.startswith("<"):
        raise InputError("XML SBOMs are not supported; use CycloneDX or SPDX JSON", input_name=name)
    if head.startswith(("SPDXVersion:", "##")) or "\nSPDXVersion:" in head:
        raise InputError("SPDX tag-value documents are not supported; use SPDX JSON", input_name=name)
    if not head.startswith("{"):
        raise InputError("not a CycloneDX or SPDX JSON document", input_name=name)
    try:
        doc: Any = json.loads(text)
    except RecursionError:
        raise InputError("JSON nested too deeply", input_name=name) from None
    except ValueError as exc:
        raise InputError(f"invalid JSON: {exc}", input_name=name) from None
    if not isinstance(doc, dict):
        raise InputError("not a CycloneDX or SPDX JSON document", input_name=name)
    if doc.get("bomFormat") == "CycloneDX":
        from garrison.sbom.formats.cyclonedx import decode_cyclonedx

        result = decode_cyclonedx(doc, name)
    elif isinstance(doc.get("spdxVersion"), str):
        from garrison.sbom.formats.spdx import decode_spdx

        result = decode_spdx(doc, name)
    else:
        raise InputError("not a CycloneDX or SPDX JSON document (no bomFormat or spdxVersion)", input_name=name)
    artifact, packages, os_ = result
    logger.debug("%s: %d packages, os %s", name, len(packages), os_)
    return artifact, packages, os_
