"""The SBOM as a table: packages grouped by type (OS package types first) with version, layer and path."""

from __future__ import annotations

from collections import defaultdict

from rich import box
from rich.table import Table

from garrison.model import Package, ScanResult
from garrison.report._common import OS_TYPES, image_reference, short_layer, sorted_packages
from garrison.report.table import WIDE, clip, heading, make_console, output


def render_sbom_table(result: ScanResult, *, color: bool = False, width: int | None = None) -> str:
    console = make_console(color=color, width=width)
    title = image_reference(result.artifact)
    if result.os is not None:
        title += f" ({result.os.family} {result.os.version})"
    heading(console, title, color=color)
    console.print()
    by_type: dict[str, list[Package]] = defaultdict(list)
    for pkg in sorted_packages(result.packages):
        by_type[pkg.type].append(pkg)
    for ptype in sorted(by_type, key=lambda t: (t not in OS_TYPES, t)):
        pkgs = by_type[ptype]
        heading(console, f"{ptype} ({len(pkgs)} package{'s' if len(pkgs) != 1 else ''})", color=color)
        table = Table(box=box.SQUARE, header_style="bold" if color else "", expand=False)
        wide = console.width >= WIDE
        table.add_column("Name", overflow="fold")
        table.add_column("Version", overflow="fold")
        table.add_column("Layer", overflow="fold")
        table.add_column("Path", overflow="fold")
        if wide:
            table.add_column("Licenses", overflow="fold")
        for pkg in pkgs:
            name = f"{pkg.namespace}/{pkg.name}" if pkg.namespace and ptype not in OS_TYPES else pkg.name
            cells = [name, pkg.version, short_layer(pkg.layer), pkg.path]
            if wide:
                cells.append(clip(", ".join(pkg.licenses), 40))
            table.add_row(*cells)
        console.print(table)
        console.print()
    if not result.packages:
        console.print("No packages found.")
    console.print(f"Summary: {len(result.packages)} packages in {len(by_type)} types", soft_wrap=True)
    return output(console)
