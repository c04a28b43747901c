"""The organizers' inbox (issue 20): a question the bot cannot answer is kept, the follower is told so,
organizers see it grouped (admin API, CLI, chat) and answer it, and the answer reaches every asker as a
customer-service message through the outbox, here the fake WeChat API over real HTTP."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.devtools.simulator import WeChatSimulator
from models import texts
from tests.conftest import BEFORE_EVENT, REPO_ROOT, TOKEN
from tests.outbound import follower_wrote

ANSWER = "这个问题的答复。"


def ask(wechat, openid: str, text: str) -> str:
    reply = wechat.send_text(openid, text)
    assert reply.status == 200, reply.body
    return reply.content


def test_an_unanswered_question_is_passed_on_honestly_with_the_menu_s_first_lines(wechat):
    answer = ask(wechat, "o-asker", "可以停车吗？")
    assert answer.startswith(texts.PASSED_TO_ORGANIZERS)
    assert "1. 议程与嘉宾" in answer and "抱歉，没有找到相关内容" not in answer


def test_chatter_that_is_no_question_still_gets_the_default_reply(wechat, admin_api):
    assert "回复数字或关键词" in ask(wechat, "o-chatter", "今天天气不错")
    assert admin_api.get("/admin/api/inbox").json()["open"] == []


def test_the_inbox_loop_question_to_organizer_answer_to_the_follower(
    wechat, admin_api, app, sessions, sender, fake_wechat, clock
):
    ask(wechat, "o-asker", "可以停车吗？")
    ask(wechat, "o-other", "可以停车吗")  # typed differently: the same question, grouped
    ask(wechat, "o-third", "能带朋友吗")
    app.state.services.activity.flush()
    for openid in ("o-asker", "o-other"):
        fake_wechat.tell_follower(openid, last_interaction_at=clock.now())

    inbox = admin_api.get("/admin/api/inbox").json()
    parking, friends = inbox["open"]
    assert (parking["text"], parking["askers"], friends["askers"]) == ("可以停车吗？", 2, 1)

    answered = admin_api.post(f"/admin/api/inbox/{parking['id']}/answer", json={"text": ANSWER})
    assert answered.status_code == 200, answered.text
    assert answered.json()["answered"] == 2
    assert 'keywords = ["可以停车吗"]' in answered.json()["rule_toml"]

    sender.run_once()
    delivered = {(m["touser"], m["body"]["text"]["content"]) for m in fake_wechat.messages()}
    assert delivered == {
        ("o-asker", texts.inbox_answer("可以停车吗？", ANSWER)),
        ("o-other", texts.inbox_answer("可以停车吗", ANSWER)),
    }
    after = admin_api.get("/admin/api/inbox").json()
    assert [group["text"] for group in after["open"]] == ["能带朋友吗"]
    assert sorted(item["delivery"] for item in after["answered"]) == ["sent", "sent"]


def test_an_answer_after_48_hours_is_marked_unreachable(wechat, admin_api, sessions, sender, fake_wechat, clock):
    ask(wechat, "o-asker", "有午餐吗")
    follower_wrote(sessions, fake_wechat, "o-asker", clock.now())
    clock.advance(timedelta(hours=49))
    fake_wechat.set_now(clock.now())
    (group,) = admin_api.get("/admin/api/inbox").json()["open"]

    admin_api.post(f"/admin/api/inbox/{group['id']}/answer", json={"text": ANSWER})
    sender.run_once()

    assert fake_wechat.messages() == []
    (item,) = admin_api.get("/admin/api/inbox").json()["answered"]
    assert item["delivery"] == "unreachable"


def test_answering_an_unknown_or_answered_question_is_404(admin_api):
    assert admin_api.post("/admin/api/inbox/999/answer", json={"text": ANSWER}).status_code == 404


@pytest.fixture
def cli_environment(database_url, monkeypatch):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("EVENTBOT_NOW", BEFORE_EVENT.isoformat())


def test_the_cli_lists_the_inbox_answers_and_prints_a_rule(wechat, cli_environment):
    ask(wechat, "o-asker", "免费吗？")
    ask(wechat, "o-other", "免费吗")
    listed = CliRunner().invoke(cli, ["inbox", "list"])
    assert listed.exit_code == 0, listed.output
    question_id, askers, text = listed.stdout.splitlines()[0].split("\t")
    assert (askers, text) == ("2", "免费吗？")

    answered = CliRunner().invoke(cli, ["inbox", "answer", question_id, ANSWER])
    assert answered.exit_code == 0, answered.output
    assert "answered 2 followers" in answered.stderr
    assert answered.stdout == f'[[rules]]\nevent = "meetup-10"\nkeywords = ["免费吗"]\n[rules.reply]\ntext = "{ANSWER}"\n'
    assert CliRunner().invoke(cli, ["inbox", "answer", question_id, ANSWER]).exit_code == 1


@pytest.fixture
def organizer_chat(make_app, make_settings):
    with TestClient(make_app(make_settings(admin_openids_raw="o-organizer"))) as client:
        yield WeChatSimulator(client, TOKEN)


def test_organizers_see_and_answer_the_inbox_in_the_chat(organizer_chat, sessions):
    ask(organizer_chat, "o-asker", "要收费吗")
    inbox = ask(organizer_chat, "o-organizer", "问题")
    assert "（1 人问）要收费吗" in inbox
    question_id = inbox.splitlines()[1].split("（")[0].removeprefix("#")
    assert ask(organizer_chat, "o-organizer", f"回答 {question_id} {ANSWER}") == texts.admin_answered(1)
    assert ask(organizer_chat, "o-organizer", "问题") == texts.ADMIN_INBOX_EMPTY
    assert ask(organizer_chat, "o-organizer", f"回答 {question_id} {ANSWER}") == texts.admin_no_question(int(question_id))
