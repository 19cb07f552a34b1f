"""``garrison admission serve|manifests``: the Kubernetes validating and mutating admission
webhook, and the manifests that install it.

Exit codes: 0 success, 2 an error (bad configuration, unreadable certificate, bad flag).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from garrison.core.errors import ConfigError, NotFoundError

app = typer.Typer(help="Kubernetes admission webhook: enforce policies when objects are created.", no_args_is_help=True)


@app.command("serve")
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", envvar="GARRISON_ADMISSION_CONFIG", help="Policy configuration (YAML).")
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", envvar="GARRISON_ADMISSION_CERT", help="TLS certificate (PEM).")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", envvar="GARRISON_ADMISSION_KEY", help="TLS private key (PEM).")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", envvar="GARRISON_ADMISSION_HOST", help="Address to listen on.")
    ] = "0.0.0.0",  # noqa: S104 - a server in a pod
    port: Annotated[int, typer.Option("--port", envvar="GARRISON_ADMISSION_PORT", help="Port to listen on.")] = 8443,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Serve plain HTTP (local testing only).")
    ] = False,
) -> None:
    """Serve POST /validate, POST /mutate, GET /healthz and GET /metrics over HTTPS."""
    import uvicorn

    from garrison.admission.config import load_config
    from garrison.admission.policy import Engine
    from garrison.admission.server import create_app

    if not insecure_http:
        if cert is None or key is None:
            raise ConfigError("--cert and --key are required (or --insecure-http for local testing)")
        for p in (cert, key):
            if not p.is_file():
                raise NotFoundError("no such file", input_name=str(p))
    engine = Engine(load_config(config))
    application = create_app(engine)
    # everything loaded so far lives as long as the server: move it out of the cyclic collector's
    # generations so collections during requests stay short (tail latency)
    import gc

    gc.collect()
    gc.freeze()
    ssl = {} if insecure_http else {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False, **ssl)  # type: ignore[arg-type]
    except OSError as err:
        raise ConfigError(f"cannot serve on {host}:{port}: {err}") from None


@app.command("manifests")
def manifests(
    image: Annotated[
        str, typer.Option("--image", envvar="GARRISON_ADMISSION_IMAGE", help="Webhook image (pin it by digest).")
    ],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace to install into.")] = "garrison",
    cert_dir: Annotated[
        Path | None, typer.Option("--cert-dir", help="Also write ca.crt, tls.crt and tls.key here.")
    ] = None,
    failure_policy: Annotated[str, typer.Option("--failure-policy", help="Fail or Ignore.")] = "Fail",
    timeout_seconds: Annotated[int, typer.Option("--timeout-seconds", help="Webhook timeout (1-30).")] = 5,
    replicas: Annotated[int, typer.Option("--replicas", help="Webhook replicas.")] = 2,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Print Kubernetes YAML installing the webhook with a freshly generated CA and certificate."""
    from garrison.admission.certs import generate, service_names
    from garrison.admission.manifests import NAME, ManifestOptions, build_objects, render

    opts = ManifestOptions(
        namespace=namespace,
        image=image,
        replicas=replicas,
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
    )
    certs = generate(service_names(NAME, namespace))
    text = render(build_objects(opts, certs))
    if cert_dir is not None:
        try:
            certs.write(cert_dir)
        except OSError as err:
            raise ConfigError(f"cannot write certificates: {err}", input_name=str(cert_dir)) from None
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
