"""QR codes to print, from the fake WeChat API's ``qrcode/create`` over real HTTP, drawn locally by segno
and read back with a QR reader (zbar) where the machine has one."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.cli import app as cli
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT
from tests.organizer_factories import ADMIN_TOKEN, AUTH, EVENT_ID, add_registration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QR_CREATE = "/cgi-bin/qrcode/create"


def decoded(png: bytes) -> str:
    """What the QR code in ``png`` encodes, read by zbar; without zbar, only that it is a PNG."""
    assert png.startswith(PNG_SIGNATURE)
    try:
        from PIL import Image
        from pyzbar.pyzbar import decode
    except ImportError:  # pyzbar installed but libzbar0 missing: `make browser` installs it
        pytest.skip("no QR reader (libzbar0) on this machine")
    [symbol] = decode(Image.open(io.BytesIO(png)))
    return symbol.data.decode()


def scene_of(url: str) -> str:
    """The scene the fake WeChat API put in a permanent code's ticket."""
    ticket = url.removeprefix("http://weixin.qq.com/q/fake-ticket-")
    return base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4)).decode()


@pytest.fixture
def admin(make_app, outbound_settings, clock):
    app = make_app(outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN}))
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-alice", now=clock.now(), channel="poster")
        add_registration(session, "o-bob", now=clock.now(), channel="poster", cancelled=True)
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_the_checkin_code_png_encodes_wechats_url_for_the_checkin_scene(admin, fake_wechat):
    described = admin.get(f"/admin/api/events/{EVENT_ID}/checkin-qr").json()
    response = admin.get(f"/admin/api/events/{EVENT_ID}/checkin-qr.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-qr-url"] == described["url"]
    assert decoded(response.content) == described["url"]
    assert scene_of(described["url"]) == described["scene"] == f"checkin:{EVENT_ID}"
    assert described["ticket_url"].startswith("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=fake-ticket-")
    # A permanent code is asked of WeChat once, however often it is downloaded.
    assert fake_wechat.stats()["calls"][QR_CREATE] == 1


def test_each_configured_channel_has_a_code_and_its_registrations(admin, fake_wechat):
    channels = admin.get("/admin/api/qr/channels", params={"event_id": EVENT_ID}).json()
    assert channels == {
        "items": [{"channel": "poster", "registrations": 1}, {"channel": "wechat-group", "registrations": 0}],
        "total": 2,
    }
    png = admin.get("/admin/api/qr/channels/poster.png")
    assert scene_of(decoded(png.content)) == "poster"
    unknown = admin.get("/admin/api/qr/channels/elsewhere.png")
    assert unknown.status_code == 404 and "config.toml 的 [qr] channels" in unknown.json()["detail"]


def test_without_wechat_credentials_the_codes_say_why(make_app, make_settings):
    with TestClient(make_app(make_settings(admin_token=ADMIN_TOKEN)), headers=AUTH) as client:
        response = client.get(f"/admin/api/events/{EVENT_ID}/checkin-qr.png")
    assert response.status_code == 503 and "WECHAT_APP_ID" in response.json()["detail"]


def test_wechats_refusal_is_reported_in_chinese(admin, fake_wechat):
    fake_wechat.inject("errcode", errcode=40013, times=None)
    response = admin.get(f"/admin/api/events/{EVENT_ID}/checkin-qr.png")
    assert response.status_code == 502 and "微信拒绝生成二维码：错误码 40013" in response.json()["detail"]


@pytest.fixture
def cli_env(monkeypatch, fake_wechat, database_url, tmp_path):
    monkeypatch.setenv("EVENTBOT_CONFIG", str(REPO_ROOT / "config.toml"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WECHAT_APP_ID", FAKE_APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", FAKE_APP_SECRET)
    monkeypatch.setenv("WECHAT_API_BASE_URL", fake_wechat.base_url)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_cli_writes_the_checkin_and_channel_codes(cli_env):
    checkin = CliRunner().invoke(cli, ["qr", "checkin", "--event", EVENT_ID])
    assert checkin.exit_code == 0, checkin.output
    assert scene_of(decoded((cli_env / f"checkin-{EVENT_ID}.png").read_bytes())) == f"checkin:{EVENT_ID}"
    assert "showqrcode?ticket=fake-ticket-" in checkin.output

    channel = CliRunner().invoke(cli, ["qr", "channel", "wechat-group", "-o", "group.png"])
    assert channel.exit_code == 0, channel.output
    assert scene_of(decoded((cli_env / "group.png").read_bytes())) == "wechat-group"
    assert CliRunner().invoke(cli, ["qr", "channel", "nowhere"]).exit_code == 2


def test_each_scene_is_asked_of_wechat_once_across_processes_and_restarts(make_app, outbound_settings, fake_wechat, cli_env):
    settings = outbound_settings.model_copy(update={"admin_token": ADMIN_TOKEN})
    urls = set()
    for _process in range(2):  # a second process on the same database, or the first one restarted
        with TestClient(make_app(settings), headers=AUTH) as client:
            urls.add(client.get(f"/admin/api/events/{EVENT_ID}/checkin-qr").json()["url"])
            assert client.get("/admin/api/qr/channels/poster.png").status_code == 200
    printed = CliRunner().invoke(cli, ["qr", "checkin", "--event", EVENT_ID])
    assert printed.exit_code == 0, printed.output
    assert len(urls) == 1 and f"encodes {urls.pop()}" in printed.output
    assert fake_wechat.stats()["calls"][QR_CREATE] == 2  # the check-in scene and the poster channel's
