"""A local stand-in for WeChat's API, for tests and for running the bot without a real account.

It behaves like WeChat where the bot depends on it: access tokens (a new one invalidates the old), the
JS-SDK's jsapi_ticket (``GET /_fake/stats`` shows it, to check a page's signature),
follower state (following, last message for the 48-hour customer-service window and its per-window
count, accepted subscribe templates), error codes, and every accepted message recorded. Tests tell it
about followers and inject faults through ``/_fake/*``; a developer reads ``GET /_fake/messages``.

Run it with ``eventbot fake-wechat``, or in-process with ``FakeWeChatServer``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from models.clock import ShiftedClock

CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)
TOKEN_LIFETIME_SECONDS = 7200
TOKEN_PATHS = ("/cgi-bin/token", "/cgi-bin/stable_token")
# The fake closes a kept-alive connection idle this long, as uvicorn does by default: a client must let go
# of idle connections sooner (``scheduler.wechat_client.IDLE_CONNECTION_SECONDS``), or a call it writes as the
# fake closes the connection is lost.
KEEP_ALIVE_SECONDS = 5.0


@dataclass
class FakeFollower:
    subscribed: bool = True
    last_interaction_at: datetime | None = None
    customer_service_sent: int = 0  # in the current window
    accepted_templates: Counter = field(default_factory=Counter)


@dataclass
class Fault:
    """An injected fault: ``kind`` in errcode | http_status | latency | drop | drop_after."""

    kind: str
    errcode: int = -1
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1  # None: every matching call
    path: str | None = None  # a substring of the path; None: every call but the token endpoints

    def matches(self, path: str) -> bool:
        if self.path is None:
            return path not in TOKEN_PATHS
        return self.path in path


class FollowerActivity(BaseModel):
    openid: str
    subscribed: bool = True
    last_interaction_at: datetime | None = None  # None: now, by the fake's clock
    interacted: bool = True
    accepted_templates: dict[str, int] = {}


class FaultSpec(BaseModel):
    kind: str
    errcode: int = -1
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1
    path: str | None = None


class ClockSetting(BaseModel):
    now: datetime


class FakeWeChat:
    """The fake's state; every method is safe to call from several threads."""

    def __init__(self, app_id: str, secret: str, *, customer_service_per_window: int = 5) -> None:
        self.app_id = app_id
        self.secret = secret
        self.customer_service_per_window = customer_service_per_window
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.clock = ShiftedClock(datetime.now(timezone.utc), timezone.utc)
            self.token: str | None = None
            self.token_expires_at: datetime | None = None
            self.token_fetches = 0
            self.calls: Counter = Counter()
            self.followers: dict[str, FakeFollower] = {}
            self.faults: list[Fault] = []
            self.messages: list[dict[str, Any]] = []
            self.menu: dict | None = None
            self.jsapi_ticket = secrets.token_urlsafe(24)
            self._next_msgid = 1000

    # --- control -------------------------------------------------------------------------------
    def set_now(self, now: datetime) -> None:
        with self._lock:
            self.clock = ShiftedClock(now, timezone.utc)

    def tell_follower(self, activity: FollowerActivity) -> None:
        with self._lock:
            follower = self.followers.setdefault(activity.openid, FakeFollower())
            follower.subscribed = activity.subscribed
            if activity.interacted:
                # A message from the follower opens a new window with a fresh count.
                follower.last_interaction_at = activity.last_interaction_at or self.clock.now()
                follower.customer_service_sent = 0
            follower.accepted_templates.update(activity.accepted_templates)

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_token(self) -> None:
        with self._lock:
            self.token_expires_at = self.clock.now() - timedelta(seconds=1)

    def take_fault(self, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """The first matching fault of these kinds, used up once if it is counted."""
        with self._lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def count_call(self, path: str) -> None:
        with self._lock:
            self.calls[path] += 1

    def accepted_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    def stats(self) -> dict:
        with self._lock:
            return {"token_fetches": self.token_fetches, "calls": dict(self.calls), "jsapi_ticket": self.jsapi_ticket}

    # --- WeChat behaviour ------------------------------------------------------------------------
    def issue_token(self, app_id: str, secret: str, *, keep_valid: bool) -> dict:
        with self._lock:
            self.token_fetches += 1
            if app_id != self.app_id:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if secret != self.secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            now = self.clock.now()
            if not (keep_valid and self.token and self.token_expires_at and self.token_expires_at > now):
                # A new token invalidates the previous one, as WeChat's does (bar a short grace period).
                self.token = secrets.token_urlsafe(24)
                self.token_expires_at = now + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
            remaining = int((self.token_expires_at - now).total_seconds())
            return {"access_token": self.token, "expires_in": remaining}

    def check_token(self, token: str | None) -> dict | None:
        with self._lock:
            if not token or token != self.token:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if self.token_expires_at is None or self.token_expires_at <= self.clock.now():
                return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    def _record(self, path: str, touser: Any, body: dict) -> int:
        self._next_msgid += 1
        self.messages.append(
            {"msgid": self._next_msgid, "path": path, "touser": touser, "body": body, "at": self.clock.now().isoformat()}
        )
        return self._next_msgid

    def _follower(self, openid: str) -> tuple[FakeFollower | None, dict | None]:
        follower = self.followers.get(openid)
        if follower is None:
            return None, {"errcode": 40003, "errmsg": "invalid openid"}
        if not follower.subscribed:
            return None, {"errcode": 43004, "errmsg": "require subscribe"}
        return follower, None

    def custom_send(self, path: str, body: dict) -> dict:
        with self._lock:
            follower, error = self._follower(body.get("touser", ""))
            if error:
                return error
            last = follower.last_interaction_at
            if last is None or self.clock.now() - last > CUSTOMER_SERVICE_WINDOW:
                return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
            if follower.customer_service_sent >= self.customer_service_per_window:
                return {"errcode": 45047, "errmsg": "out of response count limit"}
            follower.customer_service_sent += 1
            self._record(path, body["touser"], body)
            return {"errcode": 0, "errmsg": "ok"}

    def template_send(self, path: str, body: dict) -> dict:
        with self._lock:
            if not body.get("template_id"):
                return {"errcode": 40037, "errmsg": "invalid template_id"}
            _, error = self._follower(body.get("touser", ""))
            if error:
                return error
            return {"errcode": 0, "errmsg": "ok", "msgid": self._record(path, body["touser"], body)}

    def subscribe_send(self, path: str, body: dict) -> dict:
        with self._lock:
            follower, error = self._follower(body.get("touser", ""))
            if error:
                return error
            template_id = body.get("template_id", "")
            if follower.accepted_templates[template_id] <= 0:
                return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
            follower.accepted_templates[template_id] -= 1
            self._record(path, body["touser"], body)
            return {"errcode": 0, "errmsg": "ok"}

    def mass_send(self, path: str, body: dict) -> dict:
        with self._lock:
            msgid = self._record(path, body.get("touser"), body)
            return {"errcode": 0, "errmsg": "send job submission success", "msg_id": msgid, "msg_data_id": msgid}

    def issue_jsapi_ticket(self, ticket_type: str) -> dict:
        if ticket_type != "jsapi":
            return {"errcode": 40097, "errmsg": "invalid args"}
        with self._lock:
            return {"errcode": 0, "errmsg": "ok", "ticket": self.jsapi_ticket, "expires_in": TOKEN_LIFETIME_SECONDS}

    def create_menu(self, body: dict) -> dict:
        with self._lock:
            self.menu = body
        return {"errcode": 0, "errmsg": "ok"}

    def get_menu(self) -> dict:
        with self._lock:
            if self.menu is None:
                return {"errcode": 46003, "errmsg": "menu no exist"}
            return {"menu": self.menu}

    def user_info(self, openid: str) -> dict:
        with self._lock:
            follower = self.followers.get(openid)
            if follower is None:
                return {"errcode": 40003, "errmsg": "invalid openid"}
            return {"subscribe": int(follower.subscribed), "openid": openid, "language": "zh_CN"}


class _HTTPStatus(Exception):
    """Raised by a route to answer with an injected HTTP error status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _DroppingMiddleware:
    """Injects dropped connections: the reply starts and then the connection closes mid-body.

    ``drop`` drops before the request is handled; ``drop_after`` handles it first (the message is sent,
    the caller never learns it), which is why a sender must not blindly resend after such an error.
    """

    def __init__(self, app, fake: FakeWeChat) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope, receive, send) -> None:
        fault = self.fake.take_fault(scope["path"], ("drop", "drop_after")) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "drop_after":

            async def discard(_message) -> None:
                return None

            await self.app(scope, receive, discard)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": b'{"errcode"', "more_body": False})


async def _json_body(request: Request) -> dict:
    # WeChat's clients (wechatpy included) post JSON without a JSON content type, so parse it regardless.
    raw = await request.body()
    return json.loads(raw) if raw else {}


JsonBody = Annotated[dict, Depends(_json_body)]


def create_fake_app(fake: FakeWeChat) -> FastAPI:
    """The fake's HTTP API: WeChat's endpoints under /cgi-bin, controls under /_fake."""
    app = FastAPI(title="fake WeChat API")

    # WeChat's routes are coroutines: the fake's state changes are quick, and an injected latency awaits
    # rather than holding a worker thread. Sync routes each took a thread-pool hop, which made the fake
    # (in the reminder benchmark's process) cost about as much CPU per call as the sender it serves.
    async def guarded(request: Request, handle) -> dict:
        path = request.url.path
        fake.count_call(path)
        fault = fake.take_fault(path, ("latency",))
        if fault is not None:
            await asyncio.sleep(fault.seconds)  # delays only this call
        fault = fake.take_fault(path, ("errcode", "http_status"))
        if fault is not None and fault.kind == "http_status":
            raise _HTTPStatus(fault.status)
        if fault is not None:
            return {"errcode": fault.errcode, "errmsg": f"injected fault {fault.errcode}"}
        if path not in TOKEN_PATHS:
            rejected = fake.check_token(request.query_params.get("access_token"))
            if rejected:
                return rejected
        return handle()

    @app.exception_handler(_HTTPStatus)
    async def _status(_request, error: _HTTPStatus) -> PlainTextResponse:
        return PlainTextResponse("injected failure", status_code=error.status)

    @app.api_route("/cgi-bin/token", methods=["GET", "POST"])
    async def token(request: Request, appid: str = "", secret: str = "") -> dict:
        return await guarded(request, lambda: fake.issue_token(appid, secret, keep_valid=False))

    @app.post("/cgi-bin/stable_token")
    async def stable_token(request: Request, body: JsonBody) -> dict:
        return await guarded(
            request,
            lambda: fake.issue_token(body.get("appid", ""), body.get("secret", ""), keep_valid=not body.get("force_refresh")),
        )

    def message_route(endpoint: str, accept):
        # A plain Starlette route: FastAPI's dependency solving and response validation were a third of
        # the fake's CPU per message, and the message routes carry the reminder benchmark's load.
        async def send(request: Request) -> JSONResponse:
            body = await _json_body(request)
            return JSONResponse(await guarded(request, lambda: accept(endpoint, body)))

        return send

    for endpoint, accept in {
        "message/custom/send": fake.custom_send,
        "message/template/send": fake.template_send,
        "message/subscribe/bizsend": fake.subscribe_send,
        "message/mass/send": fake.mass_send,
    }.items():
        app.add_route(f"/cgi-bin/{endpoint}", message_route(endpoint, accept), methods=["POST"])

    @app.post("/cgi-bin/menu/create")
    async def menu_create(request: Request, body: JsonBody) -> dict:
        return await guarded(request, lambda: fake.create_menu(body))

    @app.get("/cgi-bin/menu/get")
    async def menu_get(request: Request) -> dict:
        return await guarded(request, fake.get_menu)

    @app.post("/cgi-bin/qrcode/create")
    async def qrcode_create(request: Request, body: JsonBody) -> dict:
        if body.get("action_name") == "QR_LIMIT_STR_SCENE":
            # A permanent code: the same scene always gives the same code, whose ticket carries the scene
            # (base64) so a test can read back what was asked for. It has no expiry.
            scene = body.get("action_info", {}).get("scene", {}).get("scene_str", "")
            ticket = "fake-ticket-" + base64.urlsafe_b64encode(scene.encode()).decode().rstrip("=")
            return await guarded(request, lambda: {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket}"})
        ticket = f"fake-ticket-{secrets.token_hex(8)}"
        return await guarded(
            request,
            lambda: {"ticket": ticket, "expire_seconds": body.get("expire_seconds", 60), "url": f"http://weixin.qq.com/q/{ticket}"},
        )

    @app.get("/cgi-bin/ticket/getticket")
    async def get_ticket(request: Request, type: str = "") -> dict:
        return await guarded(request, lambda: fake.issue_jsapi_ticket(type))

    @app.get("/cgi-bin/user/info")
    async def user_info(request: Request, openid: str = "") -> dict:
        return await guarded(request, lambda: fake.user_info(openid))

    @app.post("/_fake/followers")
    def tell_follower(activity: FollowerActivity) -> dict:
        fake.tell_follower(activity)
        return {"ok": True}

    @app.post("/_fake/faults")
    def inject_fault(spec: FaultSpec) -> dict:
        fake.inject(Fault(**spec.model_dump()))
        return {"ok": True}

    @app.delete("/_fake/faults")
    def clear_faults() -> dict:
        fake.clear_faults()
        return {"ok": True}

    @app.post("/_fake/clock")
    def set_clock(setting: ClockSetting) -> dict:
        fake.set_now(setting.now)
        return {"ok": True}

    @app.post("/_fake/token/expire")
    def expire_token() -> dict:
        fake.expire_token()
        return {"ok": True}

    @app.get("/_fake/messages")
    def messages() -> list[dict]:
        return fake.accepted_messages()

    @app.get("/_fake/stats")
    def stats() -> dict:
        return fake.stats()

    @app.post("/_fake/reset")
    def reset() -> dict:
        fake.reset()
        return {"ok": True}

    app.add_middleware(_DroppingMiddleware, fake=fake)
    return app


class LoopbackServer:
    """An ASGI app served by uvicorn in a background thread on a free loopback port (tests, local runs)."""

    def __init__(
        self,
        app,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "loopback-server",
        lifespan: str = "auto",
        keep_alive_seconds: float = KEEP_ALIVE_SECONDS,
    ) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="critical", lifespan=lifespan, timeout_keep_alive=keep_alive_seconds
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._thread.name} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class FakeWeChatServer(LoopbackServer):
    """The fake served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, fake: FakeWeChat, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        super().__init__(create_fake_app(fake), host, port, name="fake-wechat", lifespan="off")


class FakeWeChatRemote:
    """Drives a running fake over HTTP: what tests and a developer's scripts use."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, payload: dict) -> None:
        self.http.post(path, json=payload).raise_for_status()

    def set_now(self, now: datetime) -> None:
        self._post("/_fake/clock", {"now": now.isoformat()})

    def tell_follower(self, openid: str, *, last_interaction_at: datetime | None = None, **fields) -> None:
        """Tell the fake a follower exists and (unless ``interacted=False``) wrote at ``last_interaction_at``."""
        at = last_interaction_at.isoformat() if last_interaction_at else None
        self._post("/_fake/followers", {"openid": openid, "last_interaction_at": at, **fields})

    def inject(self, kind: str, *, times: int | None = 1, **fields) -> None:
        """Inject a fault: errcode (errcode=), http_status (status=), latency (seconds=), drop, drop_after."""
        self._post("/_fake/faults", {"kind": kind, "times": times, **fields})

    def expire_token(self) -> None:
        self._post("/_fake/token/expire", {})

    def messages(self) -> list[dict]:
        return self.http.get("/_fake/messages").json()

    def stats(self) -> dict:
        return self.http.get("/_fake/stats").json()

    def clear_faults(self) -> None:
        self.http.delete("/_fake/faults").raise_for_status()
