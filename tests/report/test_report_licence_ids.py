"""Licence classification without cyclonedx.spdx's import: the same answers as
``cyclonedx.spdx.fixup_id`` / ``is_expression``, and ``license_expression`` is only loaded for
strings that can be an expression."""

from __future__ import annotations

import json
import subprocess
import sys

from cyclonedx.spdx import fixup_id, is_expression
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.report import _common

_KEYS = sorted(_common._licensing_keys()[0])
_IDS = sorted(_common._spdx_ids().values())
_WORDS = st.one_of(
    st.sampled_from(_IDS),
    st.sampled_from(_KEYS),
    st.sampled_from(["AND", "OR", "WITH", "and", "or", "(", ")", "+", "GPL 2.0", "gpl 2.0+", "Classpath-exception-2.0"]),
    st.sampled_from(["GPL-2+", "Expat", "BSD", "public-domain", "LicenseRef-x", "MIT/X11", "MIT,", "&", "-"]),
    st.text(alphabet="abcMIT-.+() ", max_size=8),
)


@settings(max_examples=1500, deadline=None)
@given(words=st.lists(_WORDS, min_size=1, max_size=5), sep=st.sampled_from([" ", "  ", "", " ( ", ") "]), lower=st.booleans())
def test_same_answers_as_cyclonedx(words: list[str], sep: str, lower: bool) -> None:
    value = sep.join(words)
    if lower:
        value = value.lower()
    assert _common.spdx_expression(value) == bool(is_expression(value.strip()))
    assert _common.spdx_license_id(value) == (fixup_id(value.strip()) or None)


def test_debian_names_do_not_load_license_expression() -> None:
    code = (
        "import sys, json\n"
        "from garrison.report._common import spdx_expression, spdx_license_id\n"
        "names = ['GPL-2+', 'Expat', 'BSD-3-clause', 'public-domain', 'Artistic', 'GPL-2+ with OpenSSL exception']\n"
        "out = [[spdx_license_id(n), spdx_license_id(n) or spdx_expression(n)] for n in names]\n"
        "out.append('license_expression' in sys.modules)\n"
        "out.append(spdx_expression('MIT OR Apache-2.0'))\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    # as the renderers ask: an id first, the expression parser only for what is not an id
    assert got[:6] == [[None, False], [None, False], ["BSD-3-Clause", "BSD-3-Clause"], [None, False], [None, False], [None, False]]
    assert got[6] is False  # nothing above needed the expression parser
    assert got[7] is True
