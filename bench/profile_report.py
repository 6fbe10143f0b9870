"""Where a server's CPU goes: py-spy samples of one load run, summarised by package and function."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from processes import Server

# (label, path fragment) in the order they are tried: the innermost frame of each sample is
# charged to the first group whose fragment its file path contains.
GROUPS = [
    ("payload parsing (intellizap.evolution.payloads)", "intellizap/evolution/payloads"),
    ("webhook endpoint + auth (intellizap.ingest.endpoints/auth)", "intellizap/ingest/endpoints"),
    ("webhook endpoint + auth (intellizap.ingest.endpoints/auth)", "intellizap/ingest/auth"),
    ("ingest service + group commit (intellizap.ingest)", "intellizap/ingest/"),
    ("tenant lookup (intellizap.tenants)", "intellizap/tenants/"),
    ("other intellizap code", "intellizap/"),
    ("logging (structlog)", "structlog/"),
    ("metrics (prometheus_client)", "prometheus_client/"),
    ("SQLAlchemy", "sqlalchemy/"),
    ("psycopg", "psycopg"),
    ("Starlette / FastAPI", "starlette/"),
    ("Starlette / FastAPI", "fastapi/"),
    ("uvicorn HTTP (httptools protocol)", "uvicorn/"),
    ("asyncio / event loop", "asyncio/"),
    ("asyncio / event loop", "uvloop/"),
    ("JSON (orjson)", "orjson"),
]
# Functions whose inclusive share is reported (frame name, path fragment).
MILESTONES = [
    ("evolution_webhook", "ingest/endpoints"),
    ("parse_envelope", "evolution/payloads"),
    ("parse_events", "evolution/payloads"),
    ("ingest", "ingest/service"),
    ("write", "ingest/writer"),
    ("_flush", "ingest/writer"),
    ("get", "tenants/directory"),
    ("transport_ok", "ingest/auth"),
    ("__call__", "uvicorn/middleware/proxy_headers"),
]
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<path>[^:()]+)(?::\d+)?\)$")


def profile_service(
    server: Server, load: Callable[[], dict[str, Any]], *, output: Path, seconds: float
) -> dict[str, Any]:
    """Run ``load`` while py-spy samples ``server``; write the raw stacks to ``output``."""
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "250",
            "--nonblocking",  # never pause the server: the run is also a throughput run
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    run = load()
    _, stderr = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {stderr.decode(errors='replace').strip()}")
    summary = summarise(output.read_text())
    return {"file": str(output), "rps_while_sampled": run["rps"], **summary}


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        if match:
            frames.append((match["function"], match["path"]))
        else:
            frames.append((frame.strip(), ""))
    return frames


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    by_group: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    milestones: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        if not frames:
            continue
        total += count
        function, path = frames[-1]
        group = next((label for label, part in GROUPS if part in path), "other (C code, stdlib)")
        by_group[group] += count
        by_function[f"{function} ({_short(path)})"] += count
        for name, part in MILESTONES:
            if any(f == name and part in p for f, p in frames):
                milestones[f"{name} ({part})"] += count
    if not total:
        return {"samples": 0, "summary": ["no samples"]}

    def pct(count: int) -> str:
        return f"{100 * count / total:5.1f}%"

    lines = [f"{total} samples; self time by package:"]
    lines += [f"{pct(count)}  {group}" for group, count in by_group.most_common()]
    lines.append("inclusive time of the request's steps:")
    lines += [f"{pct(count)}  {name}" for name, count in milestones.most_common()]
    lines.append(f"top {top} functions by self time:")
    lines += [f"{pct(count)}  {name}" for name, count in by_function.most_common(top)]
    return {
        "samples": total,
        "self_by_package": {group: round(count / total, 4) for group, count in by_group.items()},
        "inclusive": {name: round(count / total, 4) for name, count in milestones.items()},
        "summary": lines,
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
