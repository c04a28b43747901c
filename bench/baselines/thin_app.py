"""Baseline (a): the thinnest FastAPI + wechatpy webhook, the ceiling of eventbot's own stack.

Checks the signature, parses with wechatpy, answers the agenda keyword with a fixed text (the same text
eventbot answers), nothing else: no de-duplication, no database, no logging. Served by
``uvicorn --workers 2`` like the bot. Environment: WECHAT_TOKEN, BENCH_ANSWER_FILE (the agenda text).
"""

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

TOKEN = os.environ["WECHAT_TOKEN"]
ANSWER = Path(os.environ["BENCH_ANSWER_FILE"]).read_text(encoding="utf-8")
KEYWORD = "议程"

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/wechat")
async def wechat(request: Request, signature: str = "", timestamp: str = "", nonce: str = "") -> Response:
    try:
        check_signature(TOKEN, signature, timestamp, nonce)
    except InvalidSignatureException:
        return PlainTextResponse("invalid signature", status_code=403)
    message = parse_message(await request.body())
    if message.type != "text" or KEYWORD not in message.content:
        return PlainTextResponse("success")
    return Response(create_reply(ANSWER, message).render(), media_type="application/xml")
