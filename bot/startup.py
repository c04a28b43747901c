"""What ``eventbot serve`` tells whoever starts it: where the webhook and dashboard are, which clock and
event the bot is on, and whether reminders can reach anyone.

The lines are for the person at the terminal (Chinese and English, on stderr); the same facts go to the
JSON log on stdout as one ``startup`` record, so a log collector reading stdout sees only JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import typer
from sqlalchemy.engine import make_url

from bot.settings import Settings
from models import texts
from models.clock import Clock
from models.content import Content
from scheduler.reminders import REMINDER_TEMPLATE_KEY
from scheduler.wechat_client import outbound_configured

logger = logging.getLogger("eventbot.startup")

# A demo as it was the day before the event, for the hint when the clock is past every event.
DEMO_HINT = "EVENTBOT_NOW={before} (serve), or eventbot chat --now {before}"
EVENT_STATES = {"upcoming": "未开始 upcoming", "running": "进行中 running", "ended": "已结束 ended"}
CHANNEL_LABELS = {"template": "模板消息 template", "subscribe": "订阅通知 subscribe", "customer_service": "客服消息 48 h only"}
# The English beside ``delivery_warnings``' Chinese, for the start-up summary.
IN_ENGLISH = {
    texts.REACH_WARNING: "(reminders reach only followers who wrote in the last 48 h: set [delivery.templates] reminder)",
    texts.SUBSCRIBE_LINK_WARNING: "(订阅通知 set but no [bot] public_base_url: registrants get no link to accept it)",
}


@dataclass
class StartupSummary:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)


def local_base_url(host: str, port: int) -> str:
    """The URL to open on this machine for a server bound to ``host`` (all interfaces: loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def without_secrets(url: str) -> str:
    """A database or Redis URL fit to print: the password masked, the query (which may hold one) dropped."""
    return make_url(url).set(query={}).render_as_string(hide_password=True)


def startup_summary(settings: Settings, clock: Clock, base_url: str) -> StartupSummary:
    """The summary for a server reachable at ``base_url`` on this machine."""
    summary = StartupSummary()
    lines, warnings = summary.lines, summary.warnings
    public = settings.content.bot.public_base_url.rstrip("/")

    webhook_url = f"{base_url}/wechat"
    mode = "safe/compat" if settings.aes_enabled else "plain"
    mode_text = "安全/兼容 safe or compat (EncodingAESKey set)" if settings.aes_enabled else "明文 plain"
    lines.append(f"webhook 回调地址: {webhook_url}  模式 mode: {mode_text}")
    if public:
        lines.append(f"  公众号后台填写 URL for the MP console: {public}/wechat")

    admin_on = bool(settings.admin_tokens)
    admin_text = (
        "admin API 已开启 on" if admin_on else "admin API 未开启 off (503 until ADMIN_TOKEN or ADMIN_TOKENS is set)"
    )
    lines.append(f"管理后台 dashboard: {base_url}/admin  {admin_text}")

    database = without_secrets(settings.database_url)
    redis = without_secrets(settings.redis_url) if settings.redis_url else None
    lines.append(f"数据库 database: {database}  Redis: {redis or '未使用 none'}")

    now = clock.now()
    clock_kind = "overridden" if settings.now_override else "real"
    clock_text = "EVENTBOT_NOW 设定 overridden" if settings.now_override else "真实时间 real"
    lines.append(f"活动时钟 event clock: {now:%Y-%m-%d %H:%M} {settings.content.bot.timezone} ({clock_text})")

    event = settings.content.current_event(now)
    state = event.state(now)
    starts, ends = event.starts_at.astimezone(settings.tz), event.ends_at.astimezone(settings.tz)
    lines.append(
        f"当前活动 current event: {event.id} {event.name} {starts:%Y-%m-%d %H:%M}–{ends:%H:%M}"
        f"  状态 state: {EVENT_STATES[state]}"
    )
    if state == "ended":
        day_before = (event.starts_at - timedelta(days=1)).astimezone(settings.tz).isoformat()
        warnings.append(
            "活动已结束，回答都按结束后给出 the event is over and answers say so; for a demo: "
            + DEMO_HINT.format(before=day_before)
        )

    lines.append(
        "调度器 scheduler: 运行 on (reminders and scheduled broadcasts)"
        if settings.run_scheduler
        else "调度器 scheduler: 关闭 off (reminders go out only while `eventbot worker` runs)"
    )

    reminder_channels, reach, reach_warnings = reminder_reach(settings)
    if reach:
        lines.append(reach)
    warnings.extend(reach_warnings)

    summary.facts = {
        "webhook_url": webhook_url,
        "webhook_mode": mode,
        "public_webhook_url": f"{public}/wechat" if public else None,
        "dashboard_url": f"{base_url}/admin",
        "admin_api": "on" if admin_on else "off",
        "database": database,
        "redis": redis,
        "clock": clock_kind,
        "now": now.isoformat(),
        "event": event.id,
        "event_state": state,
        "scheduler": "on" if settings.run_scheduler else "off",
        "reminder_channels": reminder_channels,
        "warnings": warnings,
    }
    return summary


def report_startup(summary: StartupSummary) -> None:
    """Print the summary to stderr and log its facts as one JSON record (a warning when there are any)."""
    for line in summary.lines:
        typer.echo(line, err=True)
    for warning in summary.warnings:
        typer.secho(f"注意 warning: {warning}", fg=typer.colors.YELLOW, err=True)
    level = logging.WARNING if summary.warnings else logging.INFO
    logger.log(level, "startup summary", extra={"startup": summary.facts})


def delivery_warnings(content: Content) -> list[str]:
    """What will not arrive with this configuration, said before anyone relies on it."""
    if not content.delivery.reaches_beyond_window(REMINDER_TEMPLATE_KEY):
        return [texts.REACH_WARNING]
    if content.delivery.subscribe_templates.get(REMINDER_TEMPLATE_KEY) and not content.bot.public_base_url:
        return [texts.SUBSCRIBE_LINK_WARNING]
    return []


def reminder_reach(settings: Settings) -> tuple[list[str], str, list[str]]:
    """The channels reminders can go by, a line saying so, and warnings when they reach no one or not all."""
    channels = settings.content.delivery.channels_for(REMINDER_TEMPLATE_KEY)
    if not any(event.reminders for event in settings.content.events):
        return [], "提醒 reminders: 未配置 none configured (`reminders` on an event in config.toml)", []
    if not outbound_configured(settings):
        return [], "", ["提醒发不出去 reminders reach no one: WECHAT_APP_ID and WECHAT_APP_SECRET are not set"]
    if not channels:
        return [], "", [
            "提醒发不出去 reminders reach no one: no channel in [delivery] channels can carry them"
            " (set [delivery.templates] reminder, or add customer_service)"
        ]
    line = "提醒 reminders: " + ", ".join(CHANNEL_LABELS[channel] for channel in channels)
    return channels, line, [f"{warning} {IN_ENGLISH[warning]}" for warning in delivery_warnings(settings.content)]
