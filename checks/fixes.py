"""Fix steps people can copy: one shell command per step, one flag per line, scopes in variables.

`Finding.fix` is a list of steps (the report JSON's stable shape). A step is either ONE shell command
(possibly several lines: `NAME=value` assignments first, then the command with ` \\` continuations) or
ONE prose sentence (portal steps, with the https URL written out). Renderers tell them apart with
`is_command`; nothing here knows Slack or a terminal.

No step ever prints a secret's value: Key Vault advice reads `--query attributes`, or points at the
portal's Test connection.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence

INDENT = "  "
CONTINUATION = " \\"
PURVIEW_PORTAL = "https://web.purview.azure.com"
AZURE_PORTAL = "https://portal.azure.com"

# the first word of a step that is a command (shell, PowerShell, T-SQL)
_COMMAND = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=|az |read |nslookup |Resolve-DnsName |Test-NetConnection |Start-Service |"
    r"Get-[A-Za-z]+|Set-[A-Za-z]+|Restart-Service |Import-[A-Za-z]+|winget |"
    r"CREATE |ALTER |GRANT |DROP |EXEC |sqlcmd |curl |dmgcmd|\"?C:\\\\|& )"
)


Arg = str | tuple[str, str | None]
"""A bare word, or a flag and its value (None: a `<placeholder>` named after the flag)."""


def value(text: str) -> str:
    """A value as the shell needs it: as it is when it is safe, else single-quoted; `$VAR` references
    stay double-quoted so they expand."""
    if text.startswith("$") and re.fullmatch(r"\$[A-Z_][A-Z0-9_]*", text):
        return f'"{text}"'
    return shlex.quote(text)


def command(program: str, args: Sequence[Arg] = (), *, variables: Mapping[str, str] | None = None) -> str:
    """`program` with one argument per line: `("--scope", "$SCOPE")` pairs or bare words (a positional
    or a switch). `variables` come first as `NAME=value` lines, for ids people would otherwise edit
    inside a long line."""
    lines = [f"{name}={value(v)}" for name, v in (variables or {}).items()]
    parts = [a if isinstance(a, str) else f"{a[0]} {value(_given(a))}" for a in args]
    if not parts:
        return "\n".join([*lines, program])
    body = [program, *(INDENT + p for p in parts)]
    lines += [line + CONTINUATION for line in body[:-1]] + [body[-1]]
    return "\n".join(lines)


def is_command(step: str) -> bool:
    """True when a fix step is a command to paste, False when it is a sentence to read."""
    return bool(_COMMAND.match(step.lstrip()))


def wrap(line: str) -> str:
    """A one-line command split one flag per line (quotes respected); short commands stay as they are."""
    if "\n" in line or len(line) <= 80:
        return line
    words = _words(line)
    if len(words) < 3:
        return line
    head: list[str] = []
    rest: list[list[str]] = []
    for word in words:
        if word.startswith("-") and (rest or head):
            rest.append([word])
        elif rest:
            rest[-1].append(word)
        else:
            head.append(word)
    if not rest:
        return line
    body = [" ".join(head), *(INDENT + " ".join(group) for group in rest)]
    return "\n".join([b + CONTINUATION for b in body[:-1]] + [body[-1]])


def _words(line: str) -> list[str]:
    """Shell words with their quotes kept (so the text pastes back exactly)."""
    words: list[str] = []
    current = ""
    quote = ""
    for ch in line.strip():
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch.isspace():
            if current:
                words.append(current)
                current = ""
        else:
            current += ch
    if current:
        words.append(current)
    return words


def first_line(step: str) -> str:
    """The line of a command step that names the program (after any `NAME=value` lines), without its
    continuation: how a summary names the command (`az role assignment create`)."""
    lines = step.splitlines() or [""]
    for line in lines:
        if not re.match(r"^[A-Z_][A-Z0-9_]*=", line):
            return line.removesuffix(CONTINUATION).strip()
    return lines[0].strip()


def _given(arg: tuple[str, str | None]) -> str:
    flag, given = arg
    return given if given is not None else f"<{flag.lstrip('-')}>"
