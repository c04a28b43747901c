"""Structured logs: one JSON object per line, no raw openids, no phone numbers.

The webhook logs one line per request on ``eventbot.requests`` with the fields in ``LOGGED_FIELDS``;
``eventbot serve`` logs its start-up summary as one ``startup`` object (``bot.startup``).
``PhoneNumberMask`` is a safety net on the handler: whatever a module logs, an 11-digit mainland mobile
number in the message or traceback leaves the process masked. ``LOG_CONFIG`` is given to uvicorn so
its own lines and ours share the format.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from models.redact import hash_openid, mask_phone_numbers

request_logger = logging.getLogger("eventbot.requests")

# The logging HOWTO's "Optimization": no record here reports its thread, process or source line, and
# collecting them (a getpid call, a stack walk) was most of the cost of the one line per request.
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
logging._srcfile = None  # documented way to skip findCaller  # noqa: SLF001

# Extra fields a log call may carry (``extra={...}``) that the formatter copies into the JSON line.
LOGGED_FIELDS = ("openid_hash", "msg_id", "msg_type", "topic", "latency_ms", "status", "reason", "startup")

class PhoneNumberMask(logging.Filter):
    """Masks mobile numbers in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phone_numbers(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phone_numbers(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the known extra fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in LOGGED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


class BatchedStreamHandler(logging.StreamHandler):
    """A ``StreamHandler`` that writes lines in batches: every ``interval`` seconds, when a batch nears
    ``PIPE_BUF``, and at once for warnings and errors.

    Why not ``StreamHandler``: it flushes after every record, one ``write`` system call per request, and
    on the event loop that write was the largest single cost of the request log line (Q&A benchmark on a
    loaded machine: 1.10× the thin baseline without the line, 0.56× with it). Why not ``QueueHandler``
    and ``MemoryHandler``: both hand the stream one record at a time, each flushed. A batch stays at most
    4 KiB of whole lines so that each write to a pipe shared by several worker processes (a container's
    stdout) is atomic and lines never interleave.
    """

    BATCH_BYTES = 4096  # PIPE_BUF on Linux: the largest write a pipe keeps whole

    def __init__(self, stream=None, interval: float = 0.2) -> None:
        super().__init__(stream)
        self._interval = interval
        self._batch: list[str] = []
        self._batch_bytes = 0
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()  # not "_closed": logging.Handler.close() sets that to True

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (``Handler.handle``).
        try:
            line = self.format(record) + self.terminator
            size = len(line.encode())
            if self._batch_bytes + size > self.BATCH_BYTES:
                self._write_batch()
            self._batch.append(line)
            self._batch_bytes += size
            if record.levelno >= logging.WARNING:
                self._write_batch()
            elif self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_every_interval, name="log-flush", daemon=True)
                self._flusher.start()
        except RecursionError:
            raise
        except Exception:  # logging's contract: a failing handler reports and never raises
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:
            self._write_batch()

    def _write_batch(self) -> None:
        if self._batch:
            self.stream.write("".join(self._batch))
            self._batch, self._batch_bytes = [], 0
        if self.stream and hasattr(self.stream, "flush"):
            self.stream.flush()

    def close(self) -> None:
        self._stopping.set()
        super().close()

    def _flush_every_interval(self) -> None:
        # A daemon thread: at exit, logging.shutdown() flushes what the last interval left.
        while not self._stopping.wait(self._interval):
            self.flush()


def log_request(*, message=None, topic: str, latency_seconds: float, status: int = 200, reason: str = "") -> None:
    """The one line logged per ``/wechat`` push; ``message`` is None when the push was rejected."""
    fields: dict[str, object] = {"topic": topic, "latency_ms": round(latency_seconds * 1000, 2), "status": status}
    if message is not None:
        fields |= {"openid_hash": hash_openid(message.source), "msg_id": message.id, "msg_type": message.type}
    if reason:
        fields["reason"] = reason
    request_logger.info("wechat push", extra=fields)


LOG_CONFIG: dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phone_numbers": {"()": PhoneNumberMask}},
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {
        "stdout": {
            "()": BatchedStreamHandler,
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["mask_phone_numbers"],
        }
    },
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
        "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        # httpx logs every request's URL at INFO: WeChat's API takes the access token and openids there.
        "httpx": {"level": "WARNING"},
    },
}
