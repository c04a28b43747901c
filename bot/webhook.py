"""The ``/wechat`` endpoint: HTTP in, verified and parsed message to the responder, XML out.

The reply budget: WeChat drops a reply slower than 5 s. A question answered from content alone is
answered on the event loop; anything that needs the database runs in a worker thread, and if it overruns
the budget the endpoint answers ``success`` and lets it finish: its reply is stored in the
ledger (WeChat's retry gets it) and handed to the late-reply sink (customer-service message).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.late_replies import follow_up
from bot.logs import log_request
from bot.push_gate import Push, Verdict
from bot.rate_limit import Admission
from bot.responder import Response as BotResponse
from bot.responder import is_interaction
from bot.services import services_of
from bot.wechat import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    MalformedMessage,
    WebhookRejected,
    check_fresh,
    check_nonce,
    check_signature,
    parse_push,
)
from models import texts
from models.metrics import REJECTED_REQUESTS, observe_reply

logger = logging.getLogger(__name__)

webhook_router = APIRouter(tags=["wechat"])

QueryParam = Annotated[str | None, Query()]
WEBHOOK_PATH = "/wechat"
# WeChat posts a few KiB at once; a client that trickles its body holds a connection for nothing.
BODY_READ_TIMEOUT_SECONDS = 5.0


class BodyReadTimeout(WebhookRejected):
    status = 408


class PlaintextRefused(WebhookRejected):
    """A plaintext push while an AES key is set: WeChat sends ``encrypt_type=aes`` in safe and compatible
    mode alike, so a plaintext one is a downgrade (its body is covered by no signature)."""

    status = 403


class ReplayedPair(WebhookRejected):
    """A signed (timestamp, nonce) pair that already came with another body."""

    status = 403


async def read_limited_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES (before any parsing), and
    with 408 when it takes longer than BODY_READ_TIMEOUT_SECONDS to arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge("body larger than 64 KiB")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise BodyTooLarge("body larger than 64 KiB")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyReadTimeout("body not received in time") from None
    return b"".join(chunks)


def rejection(error: WebhookRejected) -> PlainTextResponse:
    return PlainTextResponse(error.detail, status_code=error.status)


@webhook_router.get(WEBHOOK_PATH, response_class=PlainTextResponse)
async def verify_server(
    request: Request, signature: QueryParam = None, timestamp: QueryParam = None, nonce: QueryParam = None,
    echostr: QueryParam = None,
) -> PlainTextResponse:
    """WeChat's server verification: echo ``echostr`` when the signature is right, else 403."""
    token = services_of(request.app).settings.wechat_token
    try:
        if echostr is None:
            raise MalformedMessage("echostr missing")
        check_signature((token, timestamp or "", nonce or ""), signature)
        check_fresh(timestamp)
    except WebhookRejected as error:
        return PlainTextResponse(error.detail, status_code=403)
    return PlainTextResponse(echostr)


# Declared so the route table shows it; ``WebhookFirst`` serves it before routing (the fast path).
@webhook_router.post(WEBHOOK_PATH, response_class=PlainTextResponse)
async def receive_push(request: Request) -> Response:
    """A message or event pushed by WeChat: verified, answered within the budget.

    ``WebhookFirst`` calls this ahead of FastAPI's routing: dependency solving and parameter validation
    cost more CPU than answering a question does, and every query parameter is checked below anyway.
    """
    started = time.perf_counter()
    services = services_of(request.app)
    query = request.query_params
    signature, timestamp, nonce = query.get("signature"), query.get("timestamp"), query.get("nonce")
    encrypt_type, msg_signature = query.get("encrypt_type"), query.get("msg_signature")
    try:
        # Everything the query alone can tell, before a byte of the body is read.
        check_signature((services.settings.wechat_token, timestamp or "", nonce or ""), signature)
        check_fresh(timestamp)
        check_nonce(nonce)
        encrypted = (encrypt_type or "raw").lower() == "aes"
        if encrypted and services.crypto is None:
            raise MalformedMessage("encrypted message but no EncodingAESKey configured")
        if not encrypted and services.crypto is not None and not services.settings.wechat_accept_plaintext:
            raise PlaintextRefused("plaintext push refused: safe mode is configured")
        body = await read_limited_body(request)
        xml = services.crypto.decrypt(body, msg_signature, timestamp, nonce) if encrypted else body
        message = parse_push(xml)
        # A plaintext body is covered by no signature: the signed pair is bound to the first body it came
        # with (an encrypted body is bound to it by msg_signature already). Last, so that a refused body
        # leaves nothing behind, not even its binding.
        verdict = await services.gate.check(
            Push(
                message.source,
                pair=None if encrypted else f"{timestamp}|{nonce}",
                body=body,
                limited=message.source not in services.settings.admin_openids and is_interaction(message),
                wants_presence=services.responder.may_answer_from_content(message),
            )
        )
        if not verdict.bound:
            raise ReplayedPair("this signed timestamp and nonce came with another body")
    except ClientDisconnect:
        logger.warning("client disconnected before sending the whole body")
        return Response(status_code=400)
    except WebhookRejected as error:
        REJECTED_REQUESTS.labels(reason=type(error).__name__).inc()
        log_request(topic="rejected", latency_seconds=time.perf_counter() - started, status=error.status, reason=error.detail)
        return rejection(error)

    # Plain mode with a key configured (WECHAT_ACCEPT_PLAINTEXT): the sender's openid is unsigned.
    response = await answer_within_budget(
        request, message, verdict, sender_verified=encrypted or services.crypto is None
    )
    latency = time.perf_counter() - started
    observe_reply(message.type, response.topic, latency)
    log_request(message=message, topic=response.topic, latency_seconds=latency)
    if not response.xml:
        return PlainTextResponse("success")
    payload = services.crypto.encrypt(response.xml, nonce, timestamp) if encrypted else response.xml
    return Response(payload, media_type="application/xml")


class WebhookFirst:
    """ASGI middleware that hands ``POST /wechat`` straight to ``receive_push``; everything else goes on.

    Why: the hottest request need not pass FastAPI's exception middleware, its per-request exit stack
    and the router's matching of every admin route (bench/RESULTS.md, item 22). ``receive_push`` turns
    every rejection into its 4xx itself; an error escaping it still reaches Starlette's
    ServerErrorMiddleware, which sits outside every added middleware (a 500).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == WEBHOOK_PATH:
            response = await receive_push(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def answer_within_budget(
    request: Request, message, verdict: Verdict, *, sender_verified: bool = True
) -> BotResponse:
    services = services_of(request.app)
    responder = services.responder
    if verdict.admission is not Admission.ALLOWED:
        # Over the limit: told once, then ``success``; neither touches the database.
        return responder.notice(message, texts.TOO_FREQUENT if verdict.admission is Admission.NOTIFY else None)
    # A question answered from content alone takes well under a millisecond: answered here, on the event
    # loop, without the hop to a worker thread (which would cost as much as the answer itself).
    if not verdict.maybe_in_form:
        answered = responder.answer_from_content(message, checked_outside_form=True)
        if answered is not None:
            return answered
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        services.executor, partial(responder.respond_with_database, message, sender_verified=sender_verified)
    )
    try:
        return await asyncio.wait_for(asyncio.shield(work), timeout=services.settings.reply_budget_seconds)
    except TimeoutError:
        logger.warning("reply budget exceeded; answering success and following up", extra={"msg_type": message.type})
        work.add_done_callback(partial(follow_up, services.late_replies))
        return BotResponse("", None, "late", message.source)
