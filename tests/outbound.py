"""Helpers for outbound tests: followers known to the database and the fake, sender processes' environment."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from bot.devtools.fake_wechat import FakeWeChatRemote
from bot.settings import Settings
from models.follower import get_or_create_follower
from tests.conftest import FAKE_APP_ID, FAKE_APP_SECRET, REPO_ROOT


def follower_wrote(sessions, fake_wechat: FakeWeChatRemote, openid: str, at: datetime) -> None:
    """The follower wrote to the account at ``at``: our database and the fake both know it."""
    with sessions.begin() as session:
        get_or_create_follower(session, openid, at).last_interaction_at = at
    fake_wechat.tell_follower(openid, last_interaction_at=at)


def outbound_environment(
    settings: Settings, fake_wechat: FakeWeChatRemote, config_path: Path = REPO_ROOT / "config.toml"
) -> dict[str, str]:
    """The environment of a process that sends through the fake WeChat API on the test's database."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "EVENTBOT_REDIS_NAMESPACE": settings.redis_namespace,
        "WECHAT_APP_ID": FAKE_APP_ID,
        "WECHAT_APP_SECRET": FAKE_APP_SECRET,
        "WECHAT_API_BASE_URL": fake_wechat.base_url,
        "EVENTBOT_CONFIG": str(config_path),
    }


def config_with_concurrency(directory: Path, concurrency: int) -> Path:
    """A copy of config.toml in ``directory`` whose senders make ``concurrency`` calls at a time."""
    config = (REPO_ROOT / "config.toml").read_text(encoding="utf-8")
    config, replaced = re.subn(r"^concurrency = \d+$", f"concurrency = {concurrency}", config, flags=re.MULTILINE)
    assert replaced == 1, "config.toml sets [delivery] concurrency once"
    path = directory / "config.toml"
    path.write_text(config, encoding="utf-8")
    return path
