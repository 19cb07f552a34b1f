"""Malformed, unknown and unreadable documents fail with one clear line naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.core.errors import InputError, NotFoundError
from garrison.sbom.formats import decode_sbom

CDX = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}
SPDX = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x", "dataLicense": "CC0-1.0"}


def _doc(base: dict[str, object], **extra: object) -> bytes:
    return json.dumps({**base, **extra}).encode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "not a CycloneDX or SPDX JSON document", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "not UTF-8", id="binary"),
        pytest.param(b'{"bomFormat": "CycloneDX", "specVersion": ', "invalid JSON", id="truncated"),
        pytest.param(b"[1, 2]", "not a CycloneDX or SPDX JSON document", id="array"),
        pytest.param(b'{"hello": "world"}', "no bomFormat or spdxVersion", id="unknown-json"),
        pytest.param(b'<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6"/>', "XML", id="xml"),
        pytest.param(b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "tag-value", id="tag-value"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "not a CycloneDX or SPDX JSON document", id="deep-array"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply", id="deep-object"),
        pytest.param(_doc(CDX, specVersion="1.1"), "unsupported CycloneDX specVersion '1.1'", id="cdx-1.1"),
        pytest.param(_doc(CDX, specVersion=2.0), "unsupported CycloneDX specVersion '2.0'", id="cdx-number-version"),
        pytest.param(_doc(CDX, components={"a": 1}), "bom.components is not an array", id="components-object"),
        pytest.param(_doc(CDX, components=[1]), "bom.components[0] is not an object", id="component-number"),
        pytest.param(_doc(CDX, components=[{"purl": ["x"]}]), "components[0].purl is not a string", id="purl-list"),
        pytest.param(_doc(CDX, components=[{"name": "a", "properties": "x"}]), "properties is not an array", id="props"),
        pytest.param(_doc(CDX, components=[{"name": "a", "licenses": [{"license": 3}]}]), "is not an object", id="lic"),
        pytest.param(_doc(CDX, metadata=["x"]), "metadata is not an object", id="metadata-list"),
        pytest.param(_doc(SPDX, spdxVersion="SPDX-3.0"), "unsupported spdxVersion 'SPDX-3.0'", id="spdx-3"),
        pytest.param(_doc(SPDX, packages="none"), "document.packages is not an array", id="spdx-packages"),
        pytest.param(_doc(SPDX, packages=[{"externalRefs": [None]}]), "externalRefs[0] is not an object", id="spdx-refs"),
        pytest.param(_doc(SPDX, relationships=[{"relationshipType": ["DESCRIBES"]}]), "is not a string", id="spdx-rel"),
        pytest.param(_doc(SPDX, documentDescribes="SPDXRef-x"), "documentDescribes is not an array", id="spdx-describes"),
        pytest.param(_doc(SPDX, packages=[{"attributionTexts": [1]}]), "non-string", id="spdx-attribution"),
    ],
)
def test_malformed(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        decode_sbom(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        decode_sbom(tmp_path / "absent.json")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        decode_sbom(tmp_path)


@pytest.mark.parametrize(
    "purl",
    [pytest.param("pkg:", id="empty"), pytest.param("not-a-purl", id="no-scheme"), pytest.param("pkg:npm", id="no-name")],
)
def test_bad_purl_skips_only_that_component(purl: str, tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(_doc(CDX, components=[{"type": "library", "name": "x", "purl": purl},
                                            {"type": "library", "name": "lodash", "purl": "pkg:npm/lodash@4.17.20"}]))
    _, packages, _ = decode_sbom(path)
    assert [(p.name, p.version) for p in packages] == [("lodash", "4.17.20")]
