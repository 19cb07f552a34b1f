"""``garrison sensor run|list|status``: the runtime sensor on this node.

``run`` loads rules (default: our rule pack; ``--with-falco`` puts Falco's stable rules first),
starts the selected sensors (``auto`` = every one that can run here except audit, which is
opt-in for its overhead; the others are listed with the reason), carries out a ``--response`` policy on each alert (kill, pause, quarantine; deny-exec
through the fanotify exec-permission gate on container roots), writes one JSON object per alert
to ``--output`` (flushed per alert, with ``actions`` taken and ``responses`` attempted) and a status file with every sensor's counters once a second,
and runs until SIGTERM/SIGINT or ``--duration``. Logs are JSON lines on stderr. A sensor that
was asked for by name and cannot start is an error (exit 2) whose message names it and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.core.errors import ConfigError, GarrisonError, NotFoundError

app = typer.Typer(help="Run the runtime sensor: kernel events -> rules -> alerts and responses.", no_args_is_help=True)

DEFAULT_STATUS = Path(os.environ.get("GARRISON_SENSOR_STATUS", "/run/garrison/sensor-status.json"))
StatusOpt = Annotated[
    Path,
    typer.Option("--status-file", envvar="GARRISON_SENSOR_STATUS", help="Where the running sensor publishes counters."),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


class JsonLogFormatter(logging.Formatter):
    """One JSON object per log record (time, level, logger, message)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _json_logging() -> None:
    logger = logging.getLogger("garrison")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    for handler in logger.handlers:
        handler.setFormatter(JsonLogFormatter())
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def _write_status(path: Path, status: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(status, indent=2) + "\n")
        tmp.replace(path)
    except OSError as err:
        logging.getLogger("garrison.sensor").warning("cannot write status file %s: %s", path, err.strerror)


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise ConfigError(f"unknown format {fmt!r}; choose {' or '.join(allowed)}", input_name="--format")


@app.command("run")
def run(
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", "-r", help="Falco-format rules file (repeat; default: the built-in rule pack)."),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Alert file (JSON lines, appended); - = stdout.")] = "-",
    sensors: Annotated[
        str,
        typer.Option(
            "--sensors",
            help="auto (all that can run here but audit, which is opt-in), or a comma list of "
            "proc,audit,fanotify,tracefs,ebpf,bpftrace.",
        ),
    ] = "auto",
    min_priority: Annotated[str, typer.Option("--min-priority", help="Lowest rule priority to load.")] = "debug",
    fmt: Annotated[str, typer.Option("--format", "-f", help="Alert format (json).")] = "json",
    duration: Annotated[float, typer.Option("--duration", help="Stop after S seconds (0 = until a signal).")] = 0.0,
    fanotify_path: Annotated[
        list[str] | None, typer.Option("--fanotify-path", help="Mount to watch with fanotify (repeat; default /).")
    ] = None,
    protect: Annotated[
        bool,
        typer.Option(
            "--protect",
            help="Block drift: deny (fanotify exec permission) container execs of binaries not in the image "
            "(upper layer, memfd, tmpfs); each denial is an alert.",
        ),
    ] = False,
    decision_timeout_ms: Annotated[
        int, typer.Option("--decision-timeout-ms", help="Allow an exec when no decision is made in time.")
    ] = 1000,
    response: Annotated[
        Path | None,
        typer.Option(
            "--response",
            help="Response policy (YAML): per rule/tag/priority, alert, kill, deny-exec, pause or quarantine; "
            "every action is recorded on the alert line.",
        ),
    ] = None,
    audit_lock_wait: Annotated[
        float,
        typer.Option("--audit-lock-wait", help="Seconds to wait while another sensor is the audit daemon."),
    ] = 0.0,
    with_falco: Annotated[
        bool, typer.Option("--with-falco", help="Load Falco's stable rules before the rules (default: our pack only).")
    ] = False,
    status_file: StatusOpt = DEFAULT_STATUS,
) -> None:
    """Watch this node until SIGTERM/SIGINT; append one JSON object per alert to --output."""
    from garrison.model.runtime import Priority
    from garrison.runtime.pipeline import AlertSink, Pipeline
    from garrison.runtime.rules import FALCO_STABLE, default_pack, load_rules
    from garrison.runtime.sensors import build_sensors, parse_selection

    _check_format(fmt, ("json",))
    if duration < 0:
        raise ConfigError("must be >= 0", input_name="--duration")
    try:
        floor = Priority.parse(min_priority)
    except KeyError:
        raise ConfigError(f"unknown priority {min_priority!r}", input_name="--min-priority") from None
    paths = list(rules) if rules else default_pack()
    if with_falco:
        paths = [FALCO_STABLE, *paths]
    for p in paths:
        if not p.is_file():
            raise NotFoundError("rules file not found", input_name=str(p))
    ruleset = load_rules(paths, min_priority=floor)
    log = logging.getLogger("garrison.sensor")
    _json_logging()
    for warning in getattr(ruleset, "warnings", [])[:20]:
        log.info("rules: %s", warning)
    selection = parse_selection(sensors)
    options: dict[str, Any] = {"event_types": ruleset.event_types(), "lock_timeout": max(audit_lock_wait, 0.0)}
    if fanotify_path:
        options["paths"] = fanotify_path
    if decision_timeout_ms <= 0:
        raise ConfigError("must be > 0", input_name="--decision-timeout-ms")
    denials: list[Any] = []
    responder = _policy_responder(response) if response is not None else None
    deny_exec = responder is not None and _has_deny_exec(responder)
    if protect or deny_exec:
        if selection is not None and "fanotify" not in selection:
            flag = "--protect" if protect else "a deny-exec response"
            raise ConfigError(f"{flag} needs the fanotify sensor", input_name="--sensors")
        if responder is None:
            options["decide"] = _drift_guard(denials)
        else:
            options["decide"] = _exec_gate(responder, ruleset, denials, drift=protect)
        options["timeout_ms"] = decision_timeout_ms
        options["events"] = ("open_exec_perm",)
        if not fanotify_path:
            options["paths"] = []  # only container roots, marked as containers appear; never the host's /
    chosen, skipped = build_sensors(selection, **options)
    for name, why in skipped.items():
        log.info("sensor %s not started: %s", name, why)
    if not chosen:
        raise GarrisonError("no sensor can run here: " + "; ".join(skipped.values()))
    responders = [responder] if responder is not None else _responders()
    if output == "-":
        sink = AlertSink(sys.stdout)
    else:
        out = Path(output)
        if not out.parent.is_dir():
            raise NotFoundError("directory does not exist", input_name=str(out.parent))
        sink = AlertSink(out)
    hook = None
    if protect or deny_exec:
        fan = next((s for s in chosen if s.name == "fanotify"), None)
        add_mark = getattr(fan, "add_mark", None)
        if add_mark is not None:

            def hook(event: Any) -> bool:  # protect each container from its first observed event on
                if not add_mark(f"/proc/{event.proc.pid}/root"):
                    return False
                log.info("protecting container %s (%s)", event.container.id, event.container.image)
                return True

    pipeline = Pipeline(chosen, ruleset, sink=sink, responders=responders, on_new_container=hook)
    denials.append(sink)  # the drift guard writes its denials through the same sink
    done = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        done.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        pipeline.start()
        log.info("running with sensors %s", ", ".join(s.name for s in chosen))
        deadline = time.monotonic() + duration if duration else None
        last_lost: dict[str, int] = {}
        while not done.is_set():
            done.wait(1.0)
            status = pipeline.status()
            _write_status(status_file, status)
            for s in status["sensors"]:
                if s["lost"] > last_lost.get(s["sensor"], 0):
                    log.warning("sensor %s lost %d events so far", s["sensor"], s["lost"])
                    last_lost[s["sensor"]] = s["lost"]
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        pipeline.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
        final = pipeline.status()
        final["stopped"] = True
        _write_status(status_file, final)
        sink.close()
        log.info("stopped: %s", json.dumps(final["pipeline"]))


def _drift_guard(sinks: list[Any]) -> Any:
    """The fanotify decision hook of ``--protect``: the drift guard, its denials written as alerts."""
    from garrison.model.runtime import Alert, Priority
    from garrison.runtime.containers import ContainerResolver
    from garrison.runtime.drift import DriftGuard

    resolver = ContainerResolver()

    def on_decision(event: Any, origin: str, allowed: bool) -> None:
        if allowed or not sinks:
            return
        event.container = resolver.resolve(event.proc.pid)
        path = event.fd.name if event.fd is not None else ""
        alert = Alert(
            time=event.time,
            rule="Garrison Drift Exec Blocked",
            priority=Priority.CRITICAL,
            output=f"Blocked exec of a binary not in the image (origin={origin} file={path} "
            f"container={event.container.id} image={event.container.image})",
            tags=["container", "drift", "mitre_execution", "T1059"],
            fields={"fd.name": path, "drift.origin": origin},
            event=event,
            actions=["deny"],
        )
        sinks[0].write(alert)

    return DriftGuard(container_of=resolver.resolve, on_decision=on_decision).decide


def _policy_responder(path: Path) -> Any:
    """The responder carrying out ``--response``; every action it takes is logged as an event."""
    from garrison.runtime.response import Responder, load_policy

    if not path.is_file():
        raise NotFoundError("response policy not found", input_name=str(path))
    log = logging.getLogger("garrison.sensor")

    def record(event: Any) -> None:
        from garrison.runtime.pipeline import response_record

        rec = response_record(event) | {"rule": event.args.get("rule", ""), "container": event.container.id}
        log.info("response: %s", json.dumps(rec, default=str))

    return Responder(load_policy(path), sink=record)


def _has_deny_exec(responder: Any) -> bool:
    from garrison.runtime.response import Action

    policy = responder.policy
    return any(Action.DENY_EXEC in r.actions for r in policy.rules) or Action.DENY_EXEC in policy.default


def _exec_gate(responder: Any, ruleset: Any, sinks: list[Any], *, drift: bool) -> Any:
    """The fanotify decision hook of a response policy with ``deny-exec`` (and of ``--protect``):
    rules mapped to deny-exec are evaluated on the exec about to happen; denials are alert lines."""
    from garrison.runtime.drift import DriftGuard
    from garrison.runtime.response import ExecGate

    def on_deny(alert: Any, record: Any) -> None:
        if sinks:
            sinks[0].write(alert, [record])

    guard = DriftGuard(container_of=responder.resolver.resolve) if drift else None
    return ExecGate(responder, drift=guard, ruleset=ruleset, as_exec=True, on_deny=on_deny)


def _responders() -> list[Any]:
    """The default responders (alert-only unless rules ask for more) when the response module exists."""
    try:
        from garrison.runtime import response
    except ImportError:
        return []
    factory = getattr(response, "default_responders", None)
    return list(factory()) if callable(factory) else []


@app.command("list")
def list_sensors(fmt: FormatOpt = "table") -> None:
    """Every sensor, whether it can run on this machine, and if not why and how to fix it."""
    from garrison.runtime.sensors import DESCRIPTIONS, SENSOR_NAMES, make_sensor

    _check_format(fmt, ("table", "json"))
    rows = []
    for name in SENSOR_NAMES:
        try:
            why = make_sensor(name).available()
        except (GarrisonError, ImportError) as err:
            why = str(err)
        rows.append({"sensor": name, "available": why is None, "reason": why or "", "description": DESCRIPTIONS[name]})
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "yes" if r["available"] else "no"
        typer.echo(f"{r['sensor']:<9} {state:<4} {r['reason'] or r['description']}")


@app.command("status")
def status(status_file: StatusOpt = DEFAULT_STATUS, fmt: FormatOpt = "table") -> None:
    """Counters of the running (or last) sensor: received, lost, errors per sensor."""
    _check_format(fmt, ("table", "json"))
    try:
        data = json.loads(status_file.read_text())
    except FileNotFoundError:
        raise NotFoundError(
            "no sensor status (is `garrison sensor run` running?)", input_name=str(status_file)
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"unreadable status file: {err}", input_name=str(status_file)) from None
    if not isinstance(data, dict) or not isinstance(data.get("sensors"), list):
        raise ConfigError("not a sensor status file", input_name=str(status_file))
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    state = "stopped" if data.get("stopped") else "running"
    typer.echo(f"{state} pid {data.get('pid')} at {data.get('time')}")
    typer.echo(f"{'sensor':<9} {'received':>10} {'lost':>8} {'errors':>7}")
    for s in data["sensors"]:
        if isinstance(s, dict):
            typer.echo(
                f"{s.get('sensor', '?'):<9} {s.get('received', 0):>10} {s.get('lost', 0):>8} {s.get('errors', 0):>7}"
            )
    pipe = data.get("pipeline") or {}
    typer.echo(
        f"pipeline: processed {pipe.get('processed', 0)} dropped {pipe.get('dropped', 0)} alerts {pipe.get('alerts', 0)}"
    )
