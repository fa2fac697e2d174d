"""The ephemeral answers to `list` and `runs`: short mrkdwn texts, every Purview string escaped."""

from __future__ import annotations

from collections.abc import Sequence

from checks.classify import classify_run, error_text
from checks.gateways.api import Json
from checks.sections import doc_url
from handlers.ports import ScanRuns
from handlers.render.escape import code, escape, truncate

MAX_SOURCES = 100
MAX_RUNS = 3  # per scan
MAX_ERROR = 800
MAX_TEXT = 3900  # Slack shows up to 4000 characters of a text before "show more"


def sources_text(account: str, sources: Sequence[Json], needle: str | None) -> str:
    """`list [FILTER]`: name, kind and collection of each data source, filtered by substring."""
    matching = [s for s in sources if needle is None or needle.lower() in str(s.get("name", "")).lower()]
    matching.sort(key=lambda s: str(s.get("name", "")).lower())
    where = f" matching {code(needle)}" if needle else ""
    if not matching:
        return f"No data source{where} in Purview account {code(account)}."
    lines = [f"*{len(matching)} data source{'s' if len(matching) != 1 else ''}{where} in {code(account)}*"]
    for source in matching[:MAX_SOURCES]:
        props = source.get("properties") or {}
        collection = (props.get("collection") or {}).get("referenceName")
        extra = f", collection {escape(str(collection))}" if collection else ""
        kind = escape(str(source.get("kind") or "?"))
        lines.append(f"• {code(str(source.get('name', '')))} ({kind}{extra})")
    if len(matching) > MAX_SOURCES:
        lines.append(f"…and {len(matching) - MAX_SOURCES} more: add a FILTER")
    return _fit(lines)


def runs_text(source: str, account: str, scans: Sequence[ScanRuns], docs_base: str) -> str:
    """`runs SOURCE`: the latest runs of each scan, newest first, with the error's likely section."""
    head = f"*Latest scan runs of {code(source)} in {code(account)}*"
    if not scans:
        return f"{head}\nThis data source has no scans."
    lines = [head]
    for item in scans:
        lines.append(f"*Scan {code(str(item.scan.get('name', '')))}*")
        if not item.runs:
            lines.append("    never run")
        for run in item.runs[:MAX_RUNS]:
            lines.append(_run_line(run, item.scan, docs_base))
    return _fit(lines)


def _run_line(run: Json, scan: Json, docs_base: str) -> str:
    status = escape(str(run.get("status") or "unknown"))
    when = run.get("endTime") or run.get("startTime")
    line = f"    • {status}" + (f" {escape(str(when))}" if when else "")
    error = error_text(run).strip()
    if error:
        line += f": {truncate(escape(' '.join(error.split())), MAX_ERROR)}"
        classification = classify_run(run, scan)
        if classification:
            link = doc_url(docs_base, classification.section)
            line += f" → <{link}|{escape(classification.reason)}>"
    return line


def _fit(lines: list[str]) -> str:
    """Whole lines up to the length Slack shows at once."""
    out: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > MAX_TEXT:
            out.append("…")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
