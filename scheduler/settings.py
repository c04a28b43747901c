"""What time-driven work and delivery read of the bot's settings, as a protocol so this layer never
imports ``bot``; ``bot.settings.Settings`` is the one implementation."""

from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo

from models.content import Content


class SchedulerSettings(Protocol):
    @property
    def content(self) -> Content: ...

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def wechat_app_id(self) -> str: ...

    @property
    def wechat_app_secret(self) -> str: ...

    @property
    def wechat_api_base_url(self) -> str: ...

    @property
    def redis_url(self) -> str: ...

    @property
    def redis_namespace(self) -> str: ...

    @property
    def admin_openids(self) -> frozenset[str]: ...
