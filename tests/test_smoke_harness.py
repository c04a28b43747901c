def test_agenda_answer_through_the_webhook(wechat):
    reply = wechat.send_text("o-user-1", "议程")
    assert reply.status == 200
    assert "李玉光" in reply.content
