"""The admin API's refusals of bad input (422) in Chinese, naming the field as the dashboard does, with the
machine-readable list beside them, as its OpenAPI schema declares."""

from __future__ import annotations

import pytest

from tests.organizer_factories import EVENT_ID

REGISTRATIONS = f"/admin/api/events/{EVENT_ID}/registrations"
BROADCASTS = "/admin/api/broadcasts"
BROADCAST = {"event_id": EVENT_ID, "audience": "confirmed", "text": "会前提醒"}


@pytest.mark.parametrize(
    ("params", "detail", "error"),
    [
        ({"page": "二"}, "页码：应为整数", {"loc": ["query", "page"], "field": "page", "type": "int_parsing"}),
        ({"page": 0}, "页码：不能小于 1", {"loc": ["query", "page"], "field": "page", "type": "greater_than_equal"}),
        (
            {"page_size": 501}, "每页条数：不能大于 500",
            {"loc": ["query", "page_size"], "field": "page_size", "type": "less_than_equal"},
        ),
    ],
)
def test_a_bad_page_is_refused_in_chinese_naming_the_field(admin_api, params, detail, error):
    response = admin_api.get(REGISTRATIONS, params=params)
    assert response.status_code == 422
    assert response.json() == {"detail": detail, "errors": [{**error, "msg": detail.split("：", 1)[1]}]}


def test_a_bad_date_is_refused_in_chinese(admin_api):
    response = admin_api.post(BROADCASTS, json={**BROADCAST, "send_at": "明天下午两点"})
    assert response.status_code == 422
    assert response.json()["detail"] == "发送时间：日期时间格式不对，应如 2023-03-26T13:00+08:00"
    assert response.json()["errors"][0]["loc"] == ["body", "send_at"]


def test_a_time_that_has_passed_is_refused_in_chinese(admin_api):
    response = admin_api.post(BROADCASTS, json={**BROADCAST, "send_at": "2023-03-20T09:00:00+08:00"})
    assert response.status_code == 422
    assert response.json()["detail"] == "发送时间：这个时间已经过去了，请选一个以后的时间；要立即发送，请留空。"


def test_missing_fields_are_each_named_in_chinese(admin_api):
    response = admin_api.post(f"/admin/api/events/{EVENT_ID}/walk-ins", json={})
    assert response.status_code == 422
    assert response.json()["detail"] == "姓名：必须填写；手机号：必须填写"
    assert [error["field"] for error in response.json()["errors"]] == ["name", "phone"]


@pytest.mark.parametrize(
    ("request_args", "detail"),
    [
        ({"method": "GET", "url": REGISTRATIONS, "params": {"attendance": "elsewhere"}}, "参加方式：只能是 onsite、online"),
        ({"method": "GET", "url": REGISTRATIONS, "params": {"checked_in": "也许"}}, "签到：应为 true 或 false"),
        ({"method": "GET", "url": REGISTRATIONS, "params": {"q": "x" * 65}}, "搜索词：最多 64 个字"),
        ({"method": "POST", "url": f"{REGISTRATIONS}/abc/checkin"}, "报名编号：应为整数"),
        ({"method": "POST", "url": f"/admin/api/events/{EVENT_ID}/checkin", "json": {"code": ""}}, "签到码：不能少于 1 个字"),
        ({"method": "POST", "url": BROADCASTS, "json": {**BROADCAST, "audience": "everyone"}}, "发送对象：没有「everyone」这个发送对象"),
        ({"method": "POST", "url": BROADCASTS, "content": b"{not json", "headers": {"Content-Type": "application/json"}},
         "请求内容：不是有效的 JSON"),
        ({"method": "POST", "url": BROADCASTS}, "请求内容：必须填写"),
    ],
)
def test_every_kind_of_bad_input_reads_in_chinese(admin_api, request_args, detail):
    response = admin_api.request(**request_args)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)

