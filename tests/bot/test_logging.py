"""Structured logs: one JSON line per push, the follower pseudonymised, phone numbers masked."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from bot.devtools.simulator import push_xml
from bot.logs import LOG_CONFIG
from models.redact import hash_openid
from tests.polling import wait_until

OPENID = "o-logging-follower-6xZq"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The JSON lines the production logging configuration writes, captured in memory."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    output = io.StringIO()
    config = copy.deepcopy(LOG_CONFIG)
    config["handlers"]["stdout"]["stream"] = output
    logging.config.dictConfig(config)
    yield output
    for handler in root.handlers:
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def written(output: io.StringIO) -> str:
    """What the handlers have written, once they have written what they batched."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    return output.getvalue()


def json_lines(output: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in written(output).splitlines()]


def request_lines(output: io.StringIO) -> list[dict]:
    return [line for line in json_lines(output) if line["logger"] == "eventbot.requests"]


def test_each_push_logs_one_json_line_with_hashed_openid_msgid_topic_and_latency(wechat, log_output):
    push = wechat.text_xml(OPENID, "议程", msg_id=918273645)
    wechat.post(push)

    (line,) = request_lines(log_output)
    assert line["openid_hash"] == hash_openid(OPENID)
    assert len(line["openid_hash"]) == 16
    assert line["msg_id"] == 918273645
    assert line["msg_type"] == "text"
    assert line["topic"] == "agenda"
    assert line["status"] == 200
    assert isinstance(line["latency_ms"], float) and line["latency_ms"] >= 0
    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - logged_at) < timedelta(minutes=1)


def test_a_retry_logs_its_own_line_with_the_retry_topic(wechat, log_output):
    push = wechat.text_xml(OPENID, "报名")
    wechat.post(push)
    wechat.post(push)

    assert [line["topic"] for line in request_lines(log_output)] == ["register", "retry"]


def test_the_raw_openid_and_the_token_never_reach_the_log(wechat, log_output):
    wechat.send_text(OPENID, "议程")
    wechat.send_event(OPENID, "subscribe")

    text = written(log_output)
    assert text
    assert OPENID not in text
    assert wechat.token not in text


def test_a_rejected_push_logs_its_status_and_reason_without_a_follower(client, log_output):
    stamp = str(int(time.time()))
    client.post(
        "/wechat",
        params={"signature": "0" * 40, "timestamp": stamp, "nonce": "n"},
        content=push_xml(OPENID, "text", {"Content": "议程", "MsgId": 5}),
    )

    (line,) = request_lines(log_output)
    assert line["status"] == 403
    assert line["reason"] == "invalid signature"
    assert "openid_hash" not in line


def test_mobile_numbers_are_masked_in_messages_and_tracebacks(log_output):
    logger = logging.getLogger("eventbot.anywhere")
    logger.warning("follower gave %s as contact", "13812345678")
    try:
        raise ValueError("bad phone 15900001111")
    except ValueError:
        logger.exception("could not save +86 17712345678")

    text = written(log_output)
    for number in ("13812345678", "15900001111", "17712345678"):
        assert number not in text
    assert [line["message"] for line in json_lines(log_output)] == [
        "follower gave 138****5678 as contact",
        "could not save +86 177****5678",
    ]
    assert "159****1111" in json_lines(log_output)[1]["exception"]


def test_other_digit_runs_are_not_masked(log_output):
    logging.getLogger("eventbot.anywhere").warning("MsgId 23456789012345678 at 1679644800, code 12345678901")

    (line,) = json_lines(log_output)
    assert line["message"] == "MsgId 23456789012345678 at 1679644800, code 12345678901"


class RecordingStream(io.StringIO):
    """A stream that remembers the size of every write, as a pipe would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    def write(self, text: str) -> int:
        self.writes.append(len(text.encode()))
        return super().write(text)


def test_lines_leave_in_batches_of_whole_lines_that_a_pipe_keeps_whole(log_output):
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream := RecordingStream())
    requests = logging.getLogger("eventbot.requests")
    for n in range(200):
        requests.info("wechat push", extra={"topic": "agenda", "msg_id": n})
    handler.flush()

    assert [json.loads(line)["msg_id"] for line in stream.getvalue().splitlines()] == list(range(200))
    assert 1 < len(stream.writes) < 200  # batched, not one write per line
    assert max(stream.writes) <= handler.BATCH_BYTES


def test_a_warning_is_written_at_once_with_what_was_batched_before_it(log_output):
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream := RecordingStream())
    logging.getLogger("eventbot.requests").info("wechat push", extra={"topic": "agenda"})
    logging.getLogger("eventbot.anywhere").error("the database is unreachable")

    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "wechat push", "the database is unreachable",
    ]


def test_batched_lines_are_written_within_the_interval_without_further_logging(log_output):
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream := RecordingStream())
    logging.getLogger("eventbot.requests").info("wechat push", extra={"topic": "agenda"})
    wait_until(stream.getvalue, timeout=5, what="the batched line")
    assert json.loads(stream.getvalue())["topic"] == "agenda"
