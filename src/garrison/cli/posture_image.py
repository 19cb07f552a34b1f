"""``garrison posture image REF``: check a built image's configuration and history with the
Dockerfile controls (root user, exposed SSH, secret-like ENV, missing HEALTHCHECK, curl | sh,
package hygiene...). REF is anything ``garrison scan image`` takes (docker-archive, OCI layout or
archive, registry reference). Only the manifest and config are read, never the layers.

Exit 0 when no control failed, 1 when one did, 2 on an error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.cli.scan import InsecureOpt, PasswordOpt, PlatformOpt, UserOpt
from garrison.core.errors import ConfigError
from garrison.core.jsonfmt import pretty
from garrison.posture.model import Verdict

FORMATS = ("table", "json", "sarif", "junit", "policyreport")


@app.command("image")
def posture_image(
    ref: Annotated[str, typer.Argument(help="Image: docker-archive tar, OCI layout/archive or registry reference.")],
    format: Annotated[
        str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(FORMATS)}.")
    ] = "table",
    output: OutputOpt = None,
    skip: Annotated[
        str, typer.Option("--skip", envvar="GARRISON_POSTURE_SKIP", help="Control ids not to run, comma-separated.")
    ] = "",
    only: Annotated[
        str, typer.Option("--controls", envvar="GARRISON_POSTURE_CONTROLS", help="Only run these control ids.")
    ] = "",
    platform: PlatformOpt = None,
    insecure: InsecureOpt = False,
    username: UserOpt = None,
    password: PasswordOpt = None,
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Check an image's config and history with the Dockerfile controls."""
    from garrison.cli._output import emit as _emit
    from garrison.cli._output import use_color as _use_color
    from garrison.cli.posture_dockerfile import _ids, _render_table
    from garrison.image.open import open_image
    from garrison.posture.image import check_image

    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    with open_image(ref, platform=platform, insecure=insecure, username=username, password=password) as source:
        artifact = source.artifact()
    results = check_image(artifact, only=_ids(only) or None, skip=_ids(skip) or None)
    if exceptions or baseline or write_baseline:
        from garrison.cli.posture_report import apply_suppressions

        results = apply_suppressions(results, [], exceptions, baseline, write_baseline)
    if format == "json":
        text = pretty(
            {
                "image": artifact.name,
                "results": [r.to_dict() for r in results],
                "summary": {str(v): sum(1 for r in results if r.verdict is v) for v in Verdict},
            }
        )
    elif format == "table":
        text = _render_table(results, _use_color(output), title=f"Image configuration: {artifact.name}")
    else:
        from garrison.posture.report import render

        text = render(format, results)
    _emit(text, output)
    if any(r.verdict is Verdict.FAIL for r in results):
        raise typer.Exit(1)
