"""Load results: every error and warning with a code, a file position and the item it concerns.

The codes are Falco's (``userspace/engine/falco_load_result.h``) so messages line up with what
users see from ``falco --validate``. Loading never stops at the first problem: each stage
(reader, collector, compiler) appends to one :class:`LoadResult`, and :class:`RuleLoadError`
carries them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.core.errors import InputError

# error codes
LOAD_ERR_FILE_READ = "LOAD_ERR_FILE_READ"
LOAD_ERR_YAML_PARSE = "LOAD_ERR_YAML_PARSE"
LOAD_ERR_YAML_VALIDATE = "LOAD_ERR_YAML_VALIDATE"
LOAD_ERR_COMPILE_CONDITION = "LOAD_ERR_COMPILE_CONDITION"
LOAD_ERR_COMPILE_OUTPUT = "LOAD_ERR_COMPILE_OUTPUT"
LOAD_ERR_VALIDATE = "LOAD_ERR_VALIDATE"
# warning codes
LOAD_UNKNOWN_SOURCE = "LOAD_UNKNOWN_SOURCE"
LOAD_NO_EVTTYPE = "LOAD_NO_EVTTYPE"
LOAD_UNKNOWN_FILTER = "LOAD_UNKNOWN_FILTER"
LOAD_UNSUPPORTED_FILTER = "LOAD_UNSUPPORTED_FILTER"  # ours: a Falco field our event model lacks
LOAD_UNUSED_MACRO = "LOAD_UNUSED_MACRO"
LOAD_UNUSED_LIST = "LOAD_UNUSED_LIST"
LOAD_UNKNOWN_ITEM = "LOAD_UNKNOWN_ITEM"
LOAD_APPEND_NO_VALUES = "LOAD_APPEND_NO_VALUES"
LOAD_EXCEPTION_NAME_NOT_UNIQUE = "LOAD_EXCEPTION_NAME_NOT_UNIQUE"
LOAD_COMPILE_CONDITION = "LOAD_COMPILE_CONDITION"


@dataclass(frozen=True, slots=True)
class LoadMessage:
    code: str
    message: str
    file: str = ""
    line: int = 0
    col: int = 0
    item_type: str = ""
    item_name: str = ""
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: " if self.file else ""
        what = f"{self.item_type} '{self.item_name}': " if self.item_type else ""
        text = " ".join(self.message.split())
        return f"{where}{what}{text} [{self.code}]"


@dataclass(slots=True)
class LoadResult:
    errors: list[LoadMessage] = field(default_factory=list)
    warnings: list[LoadMessage] = field(default_factory=list)

    def error(self, code: str, message: str, **where: str | int) -> None:
        self.errors.append(LoadMessage(code, message, **where))  # type: ignore[arg-type]

    def warn(self, code: str, message: str, **where: str | int) -> None:
        self.warnings.append(LoadMessage(code, message, warning=True, **where))  # type: ignore[arg-type]

    @property
    def ok(self) -> bool:
        return not self.errors


class RuleLoadError(InputError):
    """Rules could not be loaded. ``messages`` holds every error (and warning) found, in order."""

    def __init__(self, messages: list[LoadMessage], warnings: list[LoadMessage] | None = None) -> None:
        self.messages = list(messages)
        self.warnings = list(warnings or [])
        first = str(messages[0]) if messages else "invalid rules"
        more = f" (and {len(messages) - 1} more error(s))" if len(messages) > 1 else ""
        super().__init__(first + more)
