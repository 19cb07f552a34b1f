"""Condition language: parser, operators, field table semantics, compile-once functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.model.runtime import Container, FileDescriptor
from garrison.runtime.rules.compiler import CompileError, Unsupported, compile_expression, evttypes
from garrison.runtime.rules.condition import (
    And,
    Check,
    ConditionSyntaxError,
    Ident,
    ListValue,
    Not,
    Or,
    parse_condition,
)
from garrison.runtime.rules.testing import ancestor, make_event


def ok(expr: str, **kw: object) -> bool:
    ev = make_event(str(kw.pop("evt_type", "execve")), **kw)  # type: ignore[arg-type]
    return compile_expression(expr).fn(ev)


def test_parse_shapes() -> None:
    n = parse_condition("a and not b or (c and proc.name in (x, 'y z', runc:[0:PARENT]))")
    assert isinstance(n, Or)
    left, right = n.children
    assert isinstance(left, And) and isinstance(left.children[1], Not) and isinstance(left.children[0], Ident)
    assert isinstance(right, And)
    chk = right.children[1]
    assert isinstance(chk, Check) and chk.value == ListValue(("x", "y z", "runc:[0:PARENT]"), chk.value.pos)  # type: ignore[union-attr]
    c = parse_condition("proc.aname[2]=bash")
    assert isinstance(c, Check) and c.field.arg == "2" and c.value == "bash"
    t = parse_condition("tolower(proc.name) = val(proc.pname)")
    assert isinstance(t, Check) and t.field.transformers == ("tolower",)


@pytest.mark.parametrize(
    ("text", "message", "col"),
    [
        ("proc.name = ", "expected a string value", 13),
        ("proc.name in (a, b", "expected a ')' token", 19),
        ("proc.name ~ x", "expected a valid check operator", 11),
        ("(proc.name = x", "expected a ')' token", 15),
        ("proc.name = x andy", "expected blank or '(' after 'and'", 18),
        ("proc.name = x )", "unexpected token after 'x'", 15),
        ("", "empty", 1),
        ("proc.aname[", "expected a valid field argument", 12),
    ],
)
def test_parse_errors_have_positions(text: str, message: str, col: int) -> None:
    with pytest.raises(ConditionSyntaxError) as ei:
        parse_condition(text)
    assert message in ei.value.message
    assert ei.value.col == col and ei.value.line == 1


def test_deep_nesting_is_bounded() -> None:
    with pytest.raises(ConditionSyntaxError, match="max depth"):
        parse_condition("(" * 500 + "a" + ")" * 500)


@pytest.mark.parametrize(
    ("expr", "kw", "want"),
    [
        ("proc.name = bash", {}, True),
        ("proc.name == bash", {}, True),
        ("proc.name != bash", {}, False),
        ("proc.name in (sh, bash)", {}, True),
        ("proc.name intersects (sh, bash)", {}, True),
        ("proc.cmdline contains '-c id'", {"args": ["-c", "id"]}, True),
        ("proc.cmdline icontains '-C ID'", {"args": ["-c", "id"]}, True),
        ("proc.exepath startswith /usr/", {}, True),
        ("proc.exepath endswith /bash", {}, True),
        ("proc.exepath glob '/usr/*/ba?h'", {}, True),
        ("proc.exepath iglob '/USR/*'", {}, True),
        ("proc.exepath pmatch (/usr, /opt)", {}, True),
        ("proc.exepath pmatch (/us)", {}, False),
        ("proc.pid > 100 and proc.pid <= 4242 and proc.pid >= 4242 and proc.pid < 5000", {}, True),
        ("proc.tty != 0", {"tty": 1}, True),
        ("proc.pname exists", {}, True),
        ("proc.pname exists", {"ancestors": []}, False),
        ("not proc.pname in (bash)", {"ancestors": []}, True),
        ("proc.pname != bash", {"ancestors": []}, False),  # missing value: every comparison is false
        ("proc.aname[0] = bash and proc.aname[1] = sh and proc.aname[2] = sshd", {"ancestors": ["sh", "sshd"]}, True),
        ("proc.aname[3] exists", {"ancestors": ["sh", "sshd"]}, False),
        ("proc.aname = sshd", {"ancestors": ["sh", "sshd"]}, True),
        ("proc.aname in (init, sshd)", {"ancestors": ["sh", "sshd"]}, True),
        ("proc.aname = bash", {"ancestors": ["sh", "sshd"]}, False),  # the process itself is not an ancestor
        ("proc.aexepath[1] = /usr/bin/sh", {"ancestors": ["sh"]}, True),
        ("tolower(proc.name) = bash", {"name": "BASH"}, True),
        ("toupper(proc.name) = BASH", {}, True),
        ("basename(proc.exepath) = bash", {}, True),
        ("proc.name = val(proc.pname)", {"ancestors": ["bash"]}, True),
        ("proc.cwd = /tmp/", {"cwd": "/tmp"}, True),
        ("evt.type = execve and evt.dir = < and evt.res = SUCCESS and evt.rawres = 0", {}, True),
        ("evt.res = ENOENT and evt.failed = true", {"res": -2}, True),
        ("evt.num = 0", {}, False),
        ("user.name = root and user.uid = 0 and group.gid = 0", {}, True),
        ("user.loginuid = -1", {}, True),
        ("user.loginuid = 1000", {"loginuid": 1000}, True),
        ("container.id = host", {}, True),
        (
            "container.id != host and container.privileged = true",
            {"container": "abcdef0123456789", "privileged": True},
            True,
        ),
        ("container.privileged = true", {}, False),
        (
            "k8s.ns.name = shop and k8s.pod.name = web",
            {"container": "c" * 64, "k8s_ns": "shop", "k8s_pod": "web"},
            True,
        ),
        ("proc.env[HOME] = /root", {"env": {"HOME": "/root"}}, True),
        ("proc.env contains LD_PRELOAD", {"env": {"LD_PRELOAD": "/x.so"}}, True),
        ("proc.is_exe_upper_layer = true", {"exe_upper_layer": True}, True),
        ("proc.is_exe_upper_layer = false", {}, False),
        ("proc.exe bcontains 2f62696e", {"exe": "/bin/sh"}, True),
        ("proc.exe bstartswith 2f", {"exe": "/bin/sh"}, True),
        ("thread.cap_effective contains CAP_SYS_ADMIN", {"cap_effective": 1 << 21}, True),
        ("proc.duration > 5000000000", {"start_age": 10}, True),
        ("proc.duration > 5000000000", {"start_age": 1}, False),
        ("proc.sid = 4242 and proc.sname = bash", {"sid": 4242}, True),
    ],
)
def test_operators_and_fields(expr: str, kw: dict[str, object], want: bool) -> None:
    assert ok(expr, **kw) is want


def test_fd_fields() -> None:
    f = {"evt_type": "openat", "file": "/etc/ssh/../shadow", "flags": "O_RDWR|O_CREAT"}
    assert ok("fd.name = /etc/shadow and fd.nameraw = /etc/ssh/../shadow", **f)
    assert ok("fd.directory = /etc and fd.filename = shadow and fd.typechar = f and fd.type = file", **f)
    assert ok("evt.is_open_read = true and evt.is_open_write = true", **f)
    assert not ok("evt.is_open_exec = true", **f)
    assert ok("evt.is_open_exec = true", evt_type="openat", file="/tmp/x", flags=0o101, evt_args={"mode": 0o755})
    assert ok("evt.arg.flags contains O_CREAT", evt_type="openat", file="/tmp/x", flags=0o1101)
    assert ok("evt.arg.flags = O_WRONLY|O_CREAT|O_TRUNC", evt_type="openat", file="/tmp/x", flags=0o1101)
    assert ok("evt.is_open_read = true", evt_type="openat", file="/tmp/x", flags=0)
    assert not ok("fd.name exists and fd.num >= 0")
    net = {"evt_type": "connect", "sip": "192.0.2.7", "sport": 443, "cip": "10.1.1.2", "cport": 50000}
    assert ok("fd.sip = 192.0.2.7 and fd.sport = 443 and fd.cip = 10.1.1.2 and fd.cport = 50000", **net)
    assert ok("fd.rip = 192.0.2.7 and fd.lport = 50000 and fd.l4proto = tcp and fd.typechar = 4", **net)
    assert ok("fd.sip in (192.0.2.7, 192.0.2.8) and fd.sockfamily = ip", **net)
    assert ok("fd.snet = '192.0.2.0/24' and fd.cnet in ('10.0.0.0/8') and fd.rnet = 192.0.2.0/24", **net)
    assert ok("fd.net = '10.0.0.0/8' and fd.ip = 10.1.1.2 and fd.port = 443", **net)
    assert ok("fd.ip != 0.0.0.0 and fd.net != 127.0.0.0/8 and fd.connected = true", **net)
    assert not ok("fd.snet in (10.0.0.0/8, 172.16.0.0/12)", **net)
    assert ok("fd.name = '10.1.1.2:50000->192.0.2.7:443'", **net)
    v6 = {"evt_type": "connect", "sip": "2001:db8::1", "sport": 443, "cip": "2001:db8::2"}
    assert ok("fd.typechar = 6 and fd.sip = '2001:0db8::0001' and fd.snet = '2001:db8::/32'", **v6)


def test_multi_value_fields_and_missing_fd() -> None:
    ev = make_event("execve")
    assert ev.fd is None
    assert not compile_expression("fd.ip != 1.2.3.4").fn(ev)
    assert not compile_expression("fd.name != x").fn(ev)
    assert compile_expression("not fd.name = x").fn(ev)


def test_container_fields() -> None:
    c = Container(
        id="0123456789ab",
        name="web",
        image="quay.io/app:1.2",
        image_repository="quay.io/app",
        image_tag="1.2",
        labels={"team": "a"},
        pod_labels={"app": "shop"},
        pod_namespace="prod",
    )
    ev = make_event("execve", container=c)
    fn = compile_expression(
        "container.image.repository = quay.io/app and container.image.tag = 1.2 and container.name = web "
        "and container.label[team] = a and k8s.pod.label[app] = shop and k8s.ns.name = prod"
    ).fn
    assert fn(ev)
    assert not compile_expression("k8s.pod.label[missing] exists").fn(ev)


def test_evt_arg_index_and_args() -> None:
    ev = make_event("ptrace", evt_args={"request": 16, "pid": 7})
    assert compile_expression("evt.arg[0] = PTRACE_ATTACH and evt.arg[1] = 7 and evt.arg.pid = 7").fn(ev)
    assert compile_expression("evt.args contains 'request=PTRACE_ATTACH'").fn(ev)
    ev = make_event("unshare", evt_args={"flags": 0x10020000})
    assert compile_expression("evt.arg.flags = 'CLONE_NEWNS|CLONE_NEWUSER'").fn(ev)


def test_compile_errors_and_unsupported() -> None:
    with pytest.raises(CompileError, match="numeric"):
        compile_expression("proc.pid = abc")
    with pytest.raises(CompileError, match="boolean"):
        compile_expression("container.privileged = maybe")
    with pytest.raises(CompileError, match="IP"):
        compile_expression("fd.sip = not-an-ip")
    with pytest.raises(CompileError, match="argument"):
        compile_expression("proc.aname[x] = y")
    with pytest.raises(Unsupported) as ei:
        compile_expression("fd.sip.name = example.com")
    assert not ei.value.unknown and ei.value.names == ["fd.sip.name"]
    with pytest.raises(Unsupported) as ei:
        compile_expression("proc.bogus = 1")
    assert ei.value.unknown


def test_condition_compiles_once_to_python_source() -> None:
    cc = compile_expression("evt.type in (open, openat) and proc.name = cat and fd.name glob '/etc/*'")
    assert cc.source.startswith("def _cond(e):\n    return ")
    assert "e.proc.name" in cc.source and "_K" in cc.source
    # cheapest checks first: the proc.name comparison precedes the glob
    assert cc.source.index("e.proc.name") < cc.source.index(".match(")
    assert cc.evttypes == frozenset({"open", "openat"})


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("evt.type = open", {"open"}),
        ("evt.type in (open, openat) and evt.type = openat", {"openat"}),
        ("evt.type = open or evt.type = connect", {"open", "connect"}),
        ("evt.type = open or proc.name = x", None),
        ("proc.name = x", None),
        ("not evt.type = open", None),
        ("evt.type = open and (proc.name = a or proc.name = b)", {"open"}),
    ],
)
def test_evttype_resolution(expr: str, want: set[str] | None) -> None:
    got = evttypes(parse_condition(expr))
    assert (set(got) if got is not None else None) == want


def test_fd_helpers_on_non_file_fds() -> None:
    ev = make_event("connect", fd=FileDescriptor(num=3, type="unix", name="/run/x.sock"))
    assert compile_expression("fd.typechar = u and fd.name = /run/x.sock and not fd.directory exists").fn(ev)
    ev = make_event("execve", ancestors=[ancestor("sshd", pid=10)], sid=10)
    assert compile_expression("proc.sname = sshd and proc.loginshellid = 4242").fn(ev)


atoms = st.sampled_from(
    [
        "proc.name",
        "fd.name",
        "evt.type",
        "proc.aname[2]",
        "=",
        "!=",
        "in",
        "and",
        "or",
        "not",
        "(",
        ")",
        ",",
        "'x'",
        '"y z"',
        "bash",
        "exists",
        "contains",
        "glob",
        "pmatch",
        "tolower(",
        "val(",
        "[",
        "]",
        "0",
        "-1",
        "intersects",
        "startswith",
        "k8s.pod.label[app]",
        " ",
        "\n",
        "icontains",
        "<",
        ">=",
        "evt.arg.flags",
    ]
)


@given(st.lists(atoms, max_size=25).map(" ".join))
def test_fuzz_parser_token_soup(text: str) -> None:
    try:
        parse_condition(text)
    except ConditionSyntaxError as e:
        assert e.line >= 1 and e.col >= 1 and e.message


@given(st.text(max_size=200))
def test_fuzz_parser_arbitrary_text(text: str) -> None:
    try:
        parse_condition(text)
    except ConditionSyntaxError:
        pass


@given(st.lists(atoms, max_size=20).map(" ".join))
def test_fuzz_compile_never_crashes(text: str) -> None:
    try:
        cc = compile_expression(text)
    except (ConditionSyntaxError, CompileError, Unsupported):
        return
    cc.fn(make_event("execve"))


def test_output_formatting() -> None:
    from garrison.runtime.rules.compiler import CompileError as CErr
    from garrison.runtime.rules.output import Formatter

    c = Container(id="0123456789ab", name="web", privileged=False)
    ev = make_event("execve", name="nc", args=["-l"], container=c, ancestors=["sh", "sshd"])
    f = Formatter.compile(
        "x %proc.name %(proc.pname) g=%proc.aname[2] g4=%proc.aname[4] %container.info priv=%container.privileged "
        "img=%container.image.repository sip=%fd.sip.name 100%% done"
    )
    text, fields = f.format(ev)
    assert text == (
        "x nc sh g=sshd g4=<NA> container_id=0123456789ab container_name=web priv=false img=<NA> sip=<NA> 100%% done"
    )
    assert fields["proc.aname[2]"] == "sshd" and fields["proc.aname[4]"] is None
    assert fields["fd.sip.name"] is None  # known to Falco, not to our model: renders <NA>
    assert fields["k8s.pod.name"] is None and fields["proc.pid"] == 4242  # context fields always present
    with pytest.raises(CErr, match="nonexistent"):
        Formatter.compile("bad %proc.nosuch")
