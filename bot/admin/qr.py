"""QR codes to print: ``/admin/api/events/{event_id}/checkin-qr`` and ``/admin/api/qr/channels/{name}``,
each as JSON (scene, the URL it encodes, WeChat's own image page) and as a PNG drawn locally."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel
from requests import RequestException
from wechatpy.exceptions import WeChatClientException

from bot.admin.errors import service_errors
from bot.deps import NowDep, ServicesDep, SessionDep, SettingsDep
from bot.qr import QrCode, checkin_scene, permanent_qr, qr_png
from models import organizer, texts
from scheduler.wechat_client import TokenUnavailable

qr_router = APIRouter(tags=["qr"])


class QrOut(BaseModel):
    scene: str
    url: str
    ticket_url: str


class ChannelOut(BaseModel):
    channel: str
    # Registrations (not cancelled) of the event by followers who came through this channel.
    registrations: int


class ChannelList(BaseModel):
    items: list[ChannelOut]
    total: int


@contextmanager
def _wechat_errors() -> Iterator[None]:
    try:
        yield
    except WeChatClientException as error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, texts.qr_refused(error.errcode, error.errmsg)) from None
    except (TokenUnavailable, RequestException):
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, texts.QR_WECHAT_UNREACHABLE) from None


def _code(services, scene: str) -> QrCode:
    if services.wechat is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, texts.QR_NOT_CONFIGURED)
    with _wechat_errors():
        return permanent_qr(services.wechat, services.sessions, scene)


def _png(code: QrCode, filename: str) -> Response:
    return Response(
        qr_png(code.url),
        media_type="image/png",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-QR-URL": code.url},
    )


def _checkin_code(services, settings, event_id: str) -> QrCode:
    with service_errors():
        organizer.require_event(settings.content, event_id)
    return _code(services, checkin_scene(event_id))


def _channel_code(services, settings, name: str) -> QrCode:
    if name not in settings.content.qr.channels:
        raise HTTPException(status.HTTP_404_NOT_FOUND, texts.qr_unknown_channel(name))
    return _code(services, name)


@qr_router.get("/events/{event_id}/checkin-qr", response_model=QrOut)
def checkin_qr(event_id: str, services: ServicesDep, settings: SettingsDep) -> QrOut:
    """The event's check-in code (scene ``checkin:<event>``): scanning it checks a registrant in."""
    code = _checkin_code(services, settings, event_id)
    return QrOut(scene=code.scene, url=code.url, ticket_url=code.ticket_url)


@qr_router.get("/events/{event_id}/checkin-qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def checkin_qr_png(event_id: str, services: ServicesDep, settings: SettingsDep) -> Response:
    """The event's check-in code as a PNG to print."""
    return _png(_checkin_code(services, settings, event_id), f"checkin-{event_id}.png")


@qr_router.get("/qr/channels", response_model=ChannelList)
def list_channels(event_id: str, session: SessionDep, settings: SettingsDep, now: NowDep) -> ChannelList:
    """The channels configured in ``[qr]``, each with the event's registrations that came through it."""
    with service_errors():
        event = organizer.require_event(settings.content, event_id)
    reach = dict(organizer.event_stats(session, settings.content, event, now).by_channel)
    items = [ChannelOut(channel=name, registrations=reach.get(name, 0)) for name in settings.content.qr.channels]
    return ChannelList(items=items, total=len(items))


@qr_router.get("/qr/channels/{name}.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def channel_qr_png(name: str, services: ServicesDep, settings: SettingsDep) -> Response:
    """A channel's code as a PNG to print; 404 for a channel not in ``[qr] channels``."""
    return _png(_channel_code(services, settings, name), f"channel-{name}.png")
