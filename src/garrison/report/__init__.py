"""Report renderers: one module per format, chosen by name.

``render`` turns a scan result into ``table``, ``json``, ``sarif``, ``cyclonedx`` (with vulnerabilities
and VEX analysis) or ``spdx-json``; ``render_sbom`` gives the package inventory alone. Every renderer
is deterministic: equal input gives byte-identical output.
"""

from __future__ import annotations

from garrison.core.errors import ConfigError
from garrison.model import ScanResult

FORMATS = ("table", "json", "sarif", "cyclonedx", "spdx-json")
SBOM_FORMATS = ("cyclonedx", "spdx-json", "json", "table")

__all__ = ["FORMATS", "SBOM_FORMATS", "render", "render_sbom", "sbom_table"]


def render(
    result: ScanResult, fmt: str, *, color: bool = False, show_suppressed: bool = False, width: int | None = None
) -> str:
    """The report for ``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        from garrison.report.table import render_table

        return render_table(result, color=color, show_suppressed=show_suppressed, width=width)
    if fmt == "json":
        from garrison.report.json import render_json

        return render_json(result)
    if fmt == "sarif":
        from garrison.report.sarif import render_sarif

        return render_sarif(result)
    if fmt == "cyclonedx":
        from garrison.report.cyclonedx import render_cyclonedx

        return render_cyclonedx(result, vulnerabilities=True)
    if fmt == "spdx-json":
        from garrison.report.spdx import render_spdx

        return render_spdx(result)
    raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def render_sbom(result: ScanResult, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    """The package inventory of ``result`` in format ``fmt`` (one of :data:`SBOM_FORMATS`)."""
    if fmt == "cyclonedx":
        from garrison.report.cyclonedx import render_cyclonedx

        return render_cyclonedx(result, vulnerabilities=False)
    if fmt == "spdx-json":
        from garrison.report.spdx import render_spdx

        return render_spdx(result)
    if fmt == "json":
        from garrison.report.json import render_json

        return render_json(result)
    if fmt == "table":
        return sbom_table(result, color=color, width=width)
    raise ConfigError(f"unknown SBOM format {fmt!r}; choose from {', '.join(SBOM_FORMATS)}")


def sbom_table(result: ScanResult, *, color: bool = False, width: int | None = None) -> str:
    """Packages by type, with version, layer and path."""
    from garrison.report.inventory import render_sbom_table

    return render_sbom_table(result, color=color, width=width)
