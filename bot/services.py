"""The running services one app shares, in one typed container instead of loose ``app.state`` attributes.

``create_app`` builds it once; routes read it through ``bot.deps``, the webhook through ``services_of``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.late_replies import LateReplySink
from bot.push_gate import PushGate
from bot.responder import Responder
from bot.settings import Settings
from bot.wechat import SafeModeCrypto
from models.activity import ActivityRecorder
from models.clock import Clock
from models.form_store import FormStore
from models.redis_guard import RedisGuard
from scheduler.wechat_client import EventbotWeChatClient


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    # Runs database-path handlers off the event loop, a few at a time.
    executor: ThreadPoolExecutor
    # Safe-mode encryption; None in plain mode.
    crypto: SafeModeCrypto | None
    late_replies: LateReplySink
    activity: ActivityRecorder
    forms: FormStore
    responder: Responder
    # WeChat's API for the pages the bot serves (the 订阅通知 grant); None without the account's credentials.
    wechat: EventbotWeChatClient | None
    # None without REDIS_URL.
    redis_guard: RedisGuard | None
    # Each push's binding, rate limit and form presence, asked together per turn of the event loop.
    gate: PushGate


def services_of(app: FastAPI) -> Services:
    return app.state.services
