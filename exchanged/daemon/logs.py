"""The daemon's log: text or one JSON object per line, tracebacks reduced to their type."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any

from exchanged.home import Config

#: the identifiers a record may carry as fields (``extra=``), so that a log shipper can
#: select by them instead of parsing the message: never personal data, only the exchange's
#: own names for agencies, flows, batches (the agency's batch id and the exchange's uid),
#: agreements and the remote address of a connection
FIELDS = ("agency", "flow", "batch", "uid", "agreement", "remote", "metrics_listen")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info and record.exc_info[0] is not None:
            # the type only: a traceback's frames could quote values
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        # a traceback's locals never reach the log; its frames only with debug logging
        if logging.getLogger("exchanged").isEnabledFor(logging.DEBUG):
            return super().formatException(ei)
        return f"  ({ei[0].__name__})"


def configure_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # paramiko logs tracebacks of client misbehaviour at DEBUG/ERROR; keep it quiet
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
