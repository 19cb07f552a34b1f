"""Installed Python distributions: core metadata files written by pip, setuptools and Debian.

Reads ``*.dist-info/METADATA`` (wheels, PEP 376), ``*.egg-info/PKG-INFO`` and single-file
``*.egg-info`` (setuptools, Debian's ``dist-packages``) and ``*.egg/EGG-INFO/PKG-INFO`` (eggs).
The files are RFC 822 headers followed by the long description; they are parsed with the
standard library's e-mail header parser, which is what ``importlib.metadata`` itself uses, and
only the headers are read.

Licences, first match wins: ``License-Expression`` (PEP 639, already SPDX), a short
``License`` field (``UNKNOWN`` and pasted licence texts are ignored; common spellings are
mapped to SPDX ids), then ``License ::`` trove classifiers mapped to SPDX ids (unmapped
classifiers are kept as their last component). ``License-File`` entries go to the metadata.
"""

from __future__ import annotations

import email.parser
import email.policy
import posixpath
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 16 * 1024 * 1024

#: trove classifier (after ``License ::``) -> SPDX id
CLASSIFIER_SPDX: dict[str, str] = {
    "OSI Approved :: MIT License": "MIT",
    "OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "OSI Approved :: Apache Software License": "Apache-2.0",
    "OSI Approved :: BSD License": "BSD-3-Clause",
    "OSI Approved :: ISC License (ISCL)": "ISC",
    "OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "OSI Approved :: GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "OSI Approved :: Zope Public License": "ZPL-2.1",
    "OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "OSI Approved :: Academic Free License (AFL)": "AFL-3.0",
    "OSI Approved :: Artistic License": "Artistic-2.0",
    "OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "OSI Approved :: zlib/libpng License": "Zlib",
    "OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "Public Domain": "LicenseRef-Public-Domain",
}

#: free-text ``License:`` spellings -> SPDX id (compared case-insensitively)
_LICENSE_TEXT_SPDX: dict[str, str] = {
    "mit": "MIT",
    "mit license": "MIT",
    "the mit license": "MIT",
    "isc": "ISC",
    "isc license": "ISC",
    "apache": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache-2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "mpl-2.0": "MPL-2.0",
    "mpl 2.0": "MPL-2.0",
    "psf": "PSF-2.0",
    "psf license": "PSF-2.0",
    "psfl": "PSF-2.0",
    "gplv2": "GPL-2.0-only",
    "gplv3": "GPL-3.0-only",
    "lgpl": "LGPL-2.0-or-later",
    "unlicense": "Unlicense",
}

_IGNORED_LICENSE = {"", "unknown", "none", "n/a", "other", "other/proprietary license"}


def _header(msg: Any, name: str) -> str:
    value = msg.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _raw_header(msg: Any, name: str) -> str:
    value = msg.get(name)
    return str(value).strip() if value is not None else ""


def classifier_license(classifier: str) -> str | None:
    """SPDX id (or best name) of a ``License :: ...`` classifier; ``None`` for other classifiers."""
    text = " ".join(classifier.split())
    if not text.startswith("License ::"):
        return None
    rest = text[len("License ::") :].strip()
    if rest in CLASSIFIER_SPDX:
        return CLASSIFIER_SPDX[rest]
    last = rest.rsplit("::", 1)[-1].strip()
    if last in ("OSI Approved", "Other/Proprietary License", ""):
        return None
    return last


def licenses_from_headers(msg: Any) -> tuple[str, ...]:
    expression = _header(msg, "License-Expression")
    if expression:
        return (expression,)
    raw = _raw_header(msg, "License")
    text = " ".join(raw.split())
    if "\n" not in raw and len(text) <= 80 and text.lower() not in _IGNORED_LICENSE:
        return (_LICENSE_TEXT_SPDX.get(text.lower(), text),)
    out: list[str] = []
    for classifier in msg.get_all("Classifier") or ():
        lic = classifier_license(str(classifier))
        if lic and lic not in out:
            out.append(lic)
    return tuple(out)


def parse_metadata(text: str, path: str) -> Package:
    """The distribution a core-metadata file describes; ``CatalogError`` without Name/Version."""
    msg = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    name = _header(msg, "Name")
    version = _header(msg, "Version")
    if not name:
        raise CatalogError("core metadata has no Name header", input_name=path)
    if not version:
        raise CatalogError("core metadata has no Version header", input_name=path)
    if " " in name or " " in version:
        raise CatalogError(f"malformed Name/Version header: {name!r} {version!r}", input_name=path)
    meta: dict[str, Any] = {}
    metadata_version = _header(msg, "Metadata-Version")
    if metadata_version:
        meta["metadata_version"] = metadata_version
    license_files = [" ".join(str(v).split()) for v in msg.get_all("License-File") or ()]
    if license_files:
        meta["license_files"] = license_files
    for key, header in (("summary", "Summary"), ("homepage", "Home-page"), ("author", "Author")):
        value = _header(msg, header)
        if value and value != "UNKNOWN":
            meta[key] = value
    return Package(name=name, version=version, type="pypi", licenses=licenses_from_headers(msg), metadata=meta)


def is_python_metadata_path(path: str) -> bool:
    if path.endswith(".egg-info"):
        return True
    base = posixpath.basename(path)
    parent = posixpath.basename(posixpath.dirname(path))
    if base == "METADATA":
        return parent.endswith(".dist-info")
    if base == "PKG-INFO":
        return parent.endswith(".egg-info") or parent == "EGG-INFO"
    return False


@cataloger
class PythonInstalledCataloger(Cataloger):
    """Python distributions installed in site-packages / dist-packages."""

    name = "python-installed"
    version = 1
    modes = frozenset({"image", "fs"})
    max_size = _MAX_SIZE
    suffixes = (".egg-info", "/metadata", "/pkg-info")

    def required(self, path: str, info: FileInfo) -> bool:
        return is_python_metadata_path(path) and info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        data = inp.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")  # old PKG-INFO files predate the UTF-8 rule
        return [parse_metadata(text.removeprefix("\ufeff"), inp.path)]
