"""The BuildKit-compatible Dockerfile parser: grammar, line numbers, errors and fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError, InputError, NotFoundError
from garrison.posture.dockerfile.controls import check_dockerfile
from garrison.posture.dockerfile.parser import expand, parse, parse_file

SAMPLE = """\
# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
ARG BASE=debian
ARG TAG=12
FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-11} AS Build
ENV HOME=/home/app \\
    # a comment inside a continuation
    PATH="/home/app/bin:$PATH"
run --mount=type=cache,target=/var/cache/apt --mount=type=secret,id=tok \\
    apt-get update && \\

    apt-get install -y curl
COPY --chown=app:app --chmod=755 --link src/ /src/
RUN <<EOF
set -e
echo hi
EOF
COPY <<-'CONF' /etc/app.conf
\tkey=$VALUE
\tCONF
CMD ["app", "--serve"]
ONBUILD RUN make
FROM build
HEALTHCHECK --interval=5s CMD curl -f http://localhost/ || exit 1
"""


def test_sample_grammar() -> None:
    df = parse(SAMPLE, "Dockerfile")
    assert df.directives == {"syntax": "docker/dockerfile:1.7", "check": "skip=JSONArgsRecommended"}
    cmds = [(i.cmd, i.start_line, i.end_line) for i in df.instructions]
    assert cmds == [
        ("ARG", 3, 3),
        ("ARG", 4, 4),
        ("FROM", 5, 5),
        ("ENV", 6, 8),
        ("RUN", 9, 12),
        ("COPY", 13, 13),
        ("RUN", 14, 17),
        ("COPY", 18, 20),
        ("CMD", 21, 21),
        ("ONBUILD", 22, 22),
        ("FROM", 23, 23),
        ("HEALTHCHECK", 24, 24),
    ]
    first, second = df.stages
    assert (first.name, first.base, first.platform) == ("Build", "debian:12", "$BUILDPLATFORM")
    assert second.base == "build" and df.stage_by_name("BUILD") is first
    env = df.instructions[3]
    assert env.pairs == (("HOME", "/home/app"), ("PATH", '"/home/app/bin:$PATH"'))
    run = df.instructions[4]
    assert run.flags["mount"] == ["type=cache,target=/var/cache/apt", "type=secret,id=tok"]
    assert run.value == "apt-get update &&     apt-get install -y curl"
    copy = df.instructions[5]
    assert copy.flags == {"chown": ["app:app"], "chmod": ["755"], "link": ["true"]}
    heredoc = df.instructions[6].heredocs[0]
    assert (heredoc.name, heredoc.content, heredoc.expand) == ("EOF", "set -e\necho hi\n", True)
    conf = df.instructions[7].heredocs[0]
    assert (conf.name, conf.content, conf.expand, conf.chomp) == ("CONF", "key=$VALUE\n", False, True)
    assert df.instructions[8].json_form and df.instructions[8].args == ("app", "--serve")
    onbuild = df.instructions[9]
    assert onbuild.sub is not None and onbuild.sub.cmd == "RUN" and onbuild.sub.value == "make"
    # the second stage inherits ENV from the stage it is built from
    assert df.instructions[11].env["HOME"] == "/home/app"
    assert df.warnings == []


def test_escape_directive_changes_continuation() -> None:
    df = parse("# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022\nRUN dir `\n  c:\\\\\nWORKDIR c:\\app\n")
    assert df.escape == "`"
    assert [(i.cmd, i.start_line, i.end_line) for i in df.instructions] == [
        ("FROM", 2, 2),
        ("RUN", 3, 4),
        ("WORKDIR", 5, 5),
    ]


def test_directive_after_comment_is_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM a\nRUN x \\\n y\n")
    assert df.directives == {} and df.escape == "\\"
    assert df.instructions[1].end_line == 5


def test_exec_form_falls_back_to_shell_form_on_bad_json() -> None:
    df = parse('FROM a\nCMD ["a", \'b\']\nRUN ["x", 1]\n')
    assert not df.instructions[1].json_form and not df.instructions[2].json_form


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:+y}", {"A": "1"}, "y"),
        ("${A+y}", {}, ""),
        ("$A/$B", {"A": "/srv", "B": "x"}, "/srv/x"),
        ("'$A'", {"A": "1"}, "'$A'"),
        ("\\$A", {"A": "1"}, "\\$A"),
        ("${A", {"A": "1"}, "${A"),
    ],
)
def test_expand(text: str, env: dict[str, str], want: str) -> None:
    assert expand(text, env) == want


def test_meta_args_and_unknown_instruction_warning() -> None:
    df = parse("ARG V=3.20\nFROM alpine:$V\nFOO bar\nEXPOSE 80\n", "ctx/Dockerfile")
    assert df.stages[0].base == "alpine:3.20" and df.meta_args == {"V": "3.20"}
    assert df.warnings == ["ctx/Dockerfile:3: unknown instruction 'FOO'; ignored"]
    assert [i.cmd for i in df.instructions] == ["ARG", "FROM", "EXPOSE"]


def test_instruction_before_from_is_a_warning() -> None:
    df = parse("RUN x\nFROM a\n", "D")
    assert df.warnings == ["D:1: RUN before the first FROM (no build stage); ignored"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "D: file with no instructions"),
        (b"# only a comment\n\n", "D: file with no instructions"),
        (b"FROM a\nRUN \xff\xfe\n", "D:2: not UTF-8 text"),
        (b"FROM a\nRUN <<EOF\necho\n", "D:2: unterminated heredoc 'EOF'"),
        (b"# escape=x\nFROM a\n", "D:1: invalid escape token 'x' does not validate"),
        (b"# escape=`\n# escape=\\\nFROM a\n", "D:2: only one escape parser directive can be used"),
        (b"FROM a\x00\n", "D:1: NUL byte in Dockerfile (binary file?)"),
    ],
)
def test_bad_input_is_one_line_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse(data, "D")
    assert str(err.value) == message


def test_parse_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        parse_file(tmp_path / "missing")
    with pytest.raises(InputError, match="is a directory"):
        parse_file(tmp_path)


@pytest.fixture(scope="module")
def corpus(conformance_dir: Path) -> list[bytes]:
    root = conformance_dir / "posture" / "checkov" / "tests" / "dockerfile"
    files = [p.read_bytes() for p in sorted(root.rglob("Dockerfile*"))] + [SAMPLE.encode()]
    assert len(files) > 50
    return files


def test_every_conformance_dockerfile_parses(corpus: list[bytes]) -> None:
    for data in corpus:
        assert parse(data, "D").instructions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_truncated_and_mutated(corpus: list[bytes], data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(corpus))
    cut = data.draw(st.integers(0, len(original)))
    blob = bytearray(original[:cut])
    for _ in range(data.draw(st.integers(0, 4))):
        if not blob:
            break
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.sampled_from([*b"\\`\"'<-#=[]{}$\n \t\x00\xff", blob[pos] ^ 0x20]))
    try:
        df = parse(bytes(blob), "fuzz")
    except GarrisonError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz")
        return
    check_dockerfile(df)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("FROMRUNCOPYADDENV <>-'\"\\`$={}[],#\n\tEOFa1:/")), max_size=300))
def test_fuzz_text(text: str) -> None:
    try:
        df = parse(text, "fuzz")
    except GarrisonError:
        return
    check_dockerfile(df)
