"""``/metrics``: Prometheus text with every metric the bot defines, counted from real signed pushes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

from bot.devtools.simulator import push_xml
from models.metrics import clear_multiprocess_directory
from tests.conftest import METRICS_AUTH, REPO_ROOT

DEFINED_FAMILIES = {
    "eventbot_messages",
    "eventbot_reply_latency_seconds",
    "eventbot_deduplicated_retries",
    "eventbot_rejected_requests",
    "eventbot_registrations",
    "eventbot_deliveries",
    "eventbot_token_refreshes",
    "eventbot_scheduler_jobs",
    "eventbot_activity_dropped",
}


def samples_of(exposed: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposed)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=METRICS_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples_of(response.text)


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_lists_every_metric_family_the_bot_defines(client):
    families = {family.name for family in text_string_to_metric_families(client.get("/metrics", headers=METRICS_AUTH).text)}
    assert DEFINED_FAMILIES <= families


def test_a_question_is_counted_by_type_and_topic_with_its_latency(client, wechat):
    before = scrape(client)
    reply = wechat.send_text("o-metrics-question", "议程")
    after = scrape(client)

    assert "议程" in reply.content
    counted = "eventbot_messages_total"
    assert value(after, counted, msg_type="text", topic="agenda") - value(before, counted, msg_type="text", topic="agenda") == 1
    assert value(after, "eventbot_reply_latency_seconds_count") - value(before, "eventbot_reply_latency_seconds_count") == 1
    assert value(after, "eventbot_reply_latency_seconds_sum") > value(before, "eventbot_reply_latency_seconds_sum")


def test_a_wechat_retry_is_counted_as_deduplicated(client, wechat):
    # A message with effects: a question is answered again from content, not de-duplicated.
    push = wechat.text_xml("o-metrics-retry", "报名")
    first = wechat.post(push)
    before = scrape(client)
    retry = wechat.post(push)
    after = scrape(client)

    assert retry.content == first.content
    assert value(after, "eventbot_deduplicated_retries_total") - value(before, "eventbot_deduplicated_retries_total") == 1
    retries = value(after, "eventbot_messages_total", msg_type="text", topic="retry")
    assert retries - value(before, "eventbot_messages_total", msg_type="text", topic="retry") == 1


def test_a_forged_push_is_counted_as_rejected_and_not_as_a_message(client):
    stamp = str(int(time.time()))
    forged = {"signature": "0" * 40, "timestamp": stamp, "nonce": "n"}
    before = scrape(client)
    response = client.post("/wechat", params=forged, content=push_xml("o-forger", "text", {"Content": "议程", "MsgId": 7}))
    after = scrape(client)

    assert response.status_code == 403
    rejected = "eventbot_rejected_requests_total"
    assert value(after, rejected, reason="BadSignature") - value(before, rejected, reason="BadSignature") == 1
    assert value(after, "eventbot_reply_latency_seconds_count") == value(before, "eventbot_reply_latency_seconds_count")


COUNT_ONE_MESSAGE = """
from models.metrics import observe_reply
observe_reply("text", "agenda", 0.002)
"""

EXPOSE = """
from models.metrics import exposition
print(exposition()[0].decode())
"""


def test_requests_do_not_look_up_opentelemetry_providers(wechat, monkeypatch):
    """FastAPI's native OpenTelemetry is off: no request asks for the global providers (eventbot reports
    through /metrics and its log)."""
    import opentelemetry._logs
    import opentelemetry.metrics
    import opentelemetry.trace

    def looked_up(*_args, **_kwargs):
        raise AssertionError("an OpenTelemetry provider was looked up during a request")

    for module, getter in ((opentelemetry.trace, "get_tracer_provider"), (opentelemetry.metrics, "get_meter_provider"),
                           (opentelemetry._logs, "get_logger_provider")):
        monkeypatch.setattr(module, getter, looked_up)
    assert "李玉光" in wechat.send_text("o-otel", "议程").content
    assert wechat.client.get("/healthz").status_code == 200


def test_multiprocess_mode_adds_up_every_worker(tmp_path):
    # Each worker is its own interpreter; PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client loads.
    environment = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _worker in range(2):
        subprocess.run([sys.executable, "-c", COUNT_ONE_MESSAGE], env=environment, cwd=REPO_ROOT, check=True)
    exposed = subprocess.run(
        [sys.executable, "-c", EXPOSE], env=environment, cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout

    samples = samples_of(exposed)
    assert value(samples, "eventbot_messages_total", msg_type="text", topic="agenda") == 2
    assert value(samples, "eventbot_reply_latency_seconds_count") == 2



def test_the_previous_runs_values_are_cleared_before_the_workers_start(tmp_path, monkeypatch):
    stale, unrelated = tmp_path / "counter_4242.db", tmp_path / "README"
    stale.write_bytes(b"\0" * 16)
    unrelated.write_text("kept")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    clear_multiprocess_directory()

    assert not stale.exists()
    assert unrelated.exists()
