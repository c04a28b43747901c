"""The one settings object: secrets and wiring from the environment plus the parsed ``config.toml``.

The environment holds what must stay secret or differs per deployment; the content schema lives in
``models.content``. ``load_settings`` builds both once and validates them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.content import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    Content,
    describe_validation_error,
    load_content,
)


class Environment(BaseSettings):
    """Secrets and wiring, read from environment variables with exactly these names."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    wechat_token: str = Field("", validation_alias="WECHAT_TOKEN")
    wechat_app_id: str = Field("", validation_alias="WECHAT_APP_ID")
    wechat_app_secret: str = Field("", validation_alias="WECHAT_APP_SECRET")
    wechat_encoding_aes_key: str = Field("", validation_alias="WECHAT_ENCODING_AES_KEY")
    # While an account migrates to safe mode: plaintext pushes accepted although an AES key is set.
    wechat_accept_plaintext: bool = Field(False, validation_alias="WECHAT_ACCEPT_PLAINTEXT")
    wechat_api_base_url: str = Field("https://api.weixin.qq.com", validation_alias="WECHAT_API_BASE_URL")
    database_url: str = Field("sqlite:///./data/eventbot.db", validation_alias="DATABASE_URL")
    redis_url: str = Field("", validation_alias="REDIS_URL")
    redis_namespace: str = Field("eventbot", validation_alias="EVENTBOT_REDIS_NAMESPACE")
    admin_token: str = Field("", validation_alias="ADMIN_TOKEN")
    # The OpenAPI schema at /openapi.json, behind the admin API's own auth (ADMIN_TOKEN or any of ADMIN_TOKENS);
    # off by default (no /docs page either).
    admin_docs: bool = Field(False, validation_alias="ADMIN_DOCS")
    # Bearer token for GET /metrics; unset: /metrics answers 503 (see the README for Prometheus).
    metrics_token: str = Field("", validation_alias="METRICS_TOKEN")
    # Named admin tokens, "name:token,name:token": the audit trail says which name revealed or exported.
    admin_tokens_raw: str = Field("", validation_alias="ADMIN_TOKENS")
    admin_openids_raw: str = Field("", validation_alias="EVENTBOT_ADMIN_OPENIDS")
    config_path: Path = Field(DEFAULT_CONFIG_PATH, validation_alias="EVENTBOT_CONFIG")
    now_override: datetime | None = Field(None, validation_alias="EVENTBOT_NOW")
    reply_budget_seconds: float = Field(4.0, validation_alias="EVENTBOT_REPLY_BUDGET_SECONDS")
    # The app process also competes to run the scheduler (leader-elected: one process of all runs it).
    # On by default, so `eventbot serve` alone sends reminders; 0 (or `serve --no-scheduler`) for
    # webhook-only replicas beside an `eventbot worker`.
    run_scheduler: bool = Field(True, validation_alias="EVENTBOT_RUN_SCHEDULER")

    @field_validator("wechat_encoding_aes_key")
    @classmethod
    def _aes_key_length(cls, value: str) -> str:
        if value and len(value) != 43:
            raise ValueError("must be exactly 43 characters (the EncodingAESKey from the MP console)")
        return value

    @field_validator("admin_tokens_raw")
    @classmethod
    def _named_tokens(cls, value: str) -> str:
        for index, entry in enumerate(part.strip() for part in value.split(",") if part.strip()):
            name, _, token = entry.partition(":")
            if not name.strip() or not token.strip():
                raise ValueError(f"ADMIN_TOKENS entry {index + 1} must be name:token")
        return value

    @cached_property
    def admin_tokens(self) -> dict[str, str]:
        """Every admin token and its name: ``ADMIN_TOKENS`` entries, and ``ADMIN_TOKEN`` named "admin"."""
        named = (part.strip().partition(":") for part in self.admin_tokens_raw.split(",") if part.strip())
        tokens = {token.strip(): name.strip() for name, _, token in named}
        if self.admin_token:
            tokens.setdefault(self.admin_token, "admin")
        return tokens

    @cached_property
    def admin_openids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.admin_openids_raw.split(",") if part.strip())

    @property
    def aes_enabled(self) -> bool:
        return bool(self.wechat_encoding_aes_key)



class Settings(Environment):
    """The one settings object: the environment plus the parsed content of the config file."""

    content: Content

    @property
    def tz(self) -> ZoneInfo:
        return self.content.bot.tz


def load_settings(content: Content | None = None, **overrides) -> Settings:
    """Build the settings from the environment and the config file; ``overrides`` win (tests, CLI)."""
    try:
        environment = Environment(**overrides)
        if content is None:
            content = load_content(Path(environment.config_path))
        return Settings(content=content, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, "environment")) from exc
