"""What of a job's arguments may be shown: ids, flags and numbers — never text.

procrastinate prints every job's arguments in its own log lines ("Starting job
send_text[12](tenant_id=…, text='…')"), and a ``send_text`` job carries the summary or the
transcript it sends. :class:`HideJobArguments` rewrites those lines with
:func:`describe_job_arguments`; ``intellizap jobs list`` uses the same function.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

_ID_VALUE = re.compile(r"[A-Za-z0-9_.:@+-]{1,80}")
_RESULT = " - Result: "
# A line that prints a job's call string without the job attached (procrastinate's "Waiting for
# job to finish: worker: send_text[12](…) (started 1.2 s ago)" at shutdown): its arguments are
# hidden whole.
_BARE_CALL = re.compile(r"(\b[\w.]+\[\d+\])\((.*?)\)((?: \(started [0-9.]+ s ago\))?)$", re.DOTALL)


def _shown(name: str, value: Any) -> str:
    if value is None or isinstance(value, bool | int | float):
        return f"{name}={value!r}"
    if (
        isinstance(value, str)
        and (name == "id" or name.endswith("_id"))
        and _ID_VALUE.fullmatch(value)
    ):
        return f"{name}={value!r}"
    return f"{name}=…"


def describe_job_arguments(arguments: Any) -> str:
    """``tenant_id='…', text=…``: each argument, with its value only when it is an id, a flag or
    a number."""
    if not isinstance(arguments, Mapping):
        return "…"
    return ", ".join(_shown(str(name), value) for name, value in arguments.items())


def job_call(task: str, job_id: object, arguments: Any) -> str:
    return f"{task}[{job_id}]({describe_job_arguments(arguments)})"


def _safe_result(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and _ID_VALUE.fullmatch(value) is not None)
    )


class HideJobArguments(logging.Filter):
    """Rewrites procrastinate's job lines so that they show ids only (installed on the one log
    handler, so it sees every record). Returns True: the line is kept, only its text changes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("procrastinate"):
            return True
        job = getattr(record, "job", None)
        if not isinstance(job, Mapping):
            message = record.getMessage()
            hidden = _BARE_CALL.sub(r"\1(…)\3", message)
            if hidden != message:
                record.msg, record.args = hidden, ()
            return True
        message = record.getMessage()
        call = job.get("call_string")
        safe = job_call(str(job.get("task_name")), job.get("id"), job.get("task_kwargs"))
        if isinstance(call, str) and call:
            message = message.replace(call, safe)
        if _RESULT in message and not _safe_result(getattr(record, "result", None)):
            message = message.split(_RESULT, 1)[0] + _RESULT + "…"
        record.msg, record.args = message, ()
        record.job = {
            **job,
            "task_kwargs": describe_job_arguments(job.get("task_kwargs")),
            "call_string": safe,
        }
        return True


class ShowRescheduling(logging.Filter):
    """procrastinate logs a job that asked to run again later like a failure, with its
    traceback. One that raised an exception marked ``rescheduling`` (:class:`intellizap.retries.Later`:
    a paced send waiting for its turn) is not failing: its line says ``<job> rescheduled: <why>``,
    without the traceback. Installed on the log handler: procrastinate's worker logs through a
    child logger per worker name, which a filter on ``procrastinate.worker`` would never see."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if getattr(error, "rescheduling", False) is True and record.name.startswith(
            "procrastinate"
        ):
            job = record.getMessage().split(" ended with status", 1)[0]
            record.msg, record.args = f"{job} rescheduled: {error}", ()
            record.exc_info, record.exc_text = None, None
        return True
