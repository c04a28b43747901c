"""WeChat's published push messages, every message and event type: each gets a 200 and a reply or success."""

from pathlib import Path

import pytest
from wechatpy import parse_message

from bot.wechat import parse_push, parse_xml_safely
from tests.conftest import FIXTURES

SAMPLES = sorted((FIXTURES / "samples").glob("*.xml"))


def test_all_published_samples_are_present():
    assert len(SAMPLES) == 35


@pytest.mark.parametrize("sample", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_one_parse_gives_the_message_wechatpy_gives(sample: Path):
    xml = sample.read_bytes()
    ours, theirs = parse_push(xml), parse_message(xml)
    assert type(ours) is type(theirs)
    assert ours._data == theirs._data
    assert (ours.type, ours.id, ours.source, ours.target) == (theirs.type, theirs.id, theirs.source, theirs.target)


@pytest.mark.parametrize("sample", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_every_published_push_gets_a_well_formed_answer(wechat, sample: Path):
    pushed = parse_xml_safely(sample.read_bytes())
    reply = wechat.post(sample.read_text(encoding="utf-8"))
    assert reply.status == 200
    if reply.is_success:
        return
    root = parse_xml_safely(reply.body)
    assert root.findtext("ToUserName") == pushed.findtext("FromUserName")
    assert root.findtext("FromUserName") == pushed.findtext("ToUserName")
    assert root.findtext("MsgType") in {"text", "news", "image"}
    assert reply.content or reply.articles or reply.media_id


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("01-text", "回复数字或关键词"),
        ("03-image", "图片"),
        ("05-voice-recognition", ""),
        ("08-location", "北京市海淀区北三环西路甲 18 号院"),
        ("09-link", "链接"),
        ("10-event-subscribe", "感谢关注"),
        ("16-event-CLICK", ""),
    ],
)
def test_user_facing_samples_get_a_helpful_reply(wechat, sample, expected):
    reply = wechat.post((FIXTURES / "samples" / f"{sample}.xml").read_text(encoding="utf-8"))
    assert reply.msg_type == "text"
    assert expected in reply.content


@pytest.mark.parametrize(
    "sample", ["13-event-unsubscribe", "27-event-TEMPLATESENDJOBFINISH", "29-event-MASSSENDJOBFINISH", "17-event-VIEW"]
)
def test_notification_events_get_success(wechat, sample):
    assert wechat.post((FIXTURES / "samples" / f"{sample}.xml").read_text(encoding="utf-8")).is_success
