"""The ``eventbot`` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from bot import organizer_cli
from bot.logs import LOG_CONFIG
from bot.settings import Settings, load_settings
from models import texts
from models.content import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from scheduler.wechat_client import EventbotWeChatClient

app = typer.Typer(help="eventbot: the WeChat Official Account assistant for meetups.", no_args_is_help=True)

SIMULATOR_TOKEN = "eventbot-chat-simulator"


def _settings(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as error:
        _refuse_config(error)


def _refuse_config(error: ConfigError) -> NoReturn:
    typer.secho(f"配置错误 / configuration error:\n{error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Do not run the reminder scheduler here (webhook-only replicas).")
    ] = False,
) -> None:
    """Run the bot: apply migrations, print where everything is (webhook, dashboard, clock, event, reminders),
    then serve the webhook with uvicorn; the reminder scheduler (one process of all, by leader election)
    and the outbox sender run in it too."""
    import logging.config

    import uvicorn

    from bot.startup import local_base_url, report_startup, startup_summary
    from models.clock import clock_for
    from models.metrics import clear_multiprocess_directory
    from models.migrate import upgrade

    if no_scheduler:
        # uvicorn's worker processes build their settings from the environment (bot.asgi).
        os.environ["EVENTBOT_RUN_SCHEDULER"] = "0"
    settings = _settings()
    if not settings.wechat_token:
        typer.secho(
            "WECHAT_TOKEN is not set: set it to the Token configured in the MP console (服务器配置).",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    upgrade(settings.database_url)
    clear_multiprocess_directory()
    logging.config.dictConfig(LOG_CONFIG)
    clock = clock_for(settings.now_override, settings.tz)
    report_startup(startup_summary(settings, clock, local_base_url(host, port)))
    uvicorn.run(
        "bot.asgi:app",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=LOG_CONFIG,
    )


@app.command()
def migrate() -> None:
    """Apply the database migrations to DATABASE_URL and exit (the Kubernetes migration Job runs this)."""
    from models.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("migrations applied")


@app.command("check-config")
def check_config() -> None:
    """Validate config.toml (events, rules, menu) and list what it holds."""
    from bot.startup import delivery_warnings

    settings = _settings()
    content = settings.content
    typer.echo(f"{settings.config_path}: OK ({content.bot.account_name}, {content.bot.timezone})")
    for event in content.events:
        start = event.starts_at.astimezone(settings.tz)
        typer.echo(
            f"- {event.id}: {event.name} | {start:%Y-%m-%d %H:%M} – {event.ends_at.astimezone(settings.tz):%H:%M}"
            f" | {event.venue} | {len(event.talks)} talks | capacity {event.capacity}"
        )
    enabled = sum(rule.enabled for rule in content.rules)
    typer.echo(f"rules: {len(content.rules)} ({enabled} enabled)")
    subs = sum(len(button.sub_buttons) for button in content.menu.buttons)
    typer.echo(f"menu: {len(content.menu.buttons)} buttons, {subs} sub-buttons")
    for warning in delivery_warnings(content):
        typer.secho(f"警告：{warning}", fg=typer.colors.YELLOW)


rules_app = typer.Typer(help="The organisers' keyword rules in config.toml.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("test")
def rules_test(
    text: Annotated[str, typer.Argument(help="What a follower writes.")],
    now: Annotated[datetime | None, typer.Option(help="Pretend it is this time (ISO 8601), for time windows.")] = None,
) -> None:
    """Show which rule or topic answers TEXT, and the reply (on a throw-away database)."""
    from bot.dry_run import answer_offline
    from models.clock import clock_for

    settings = _settings(wechat_token=os.environ.get("WECHAT_TOKEN") or SIMULATOR_TOKEN)
    try:
        result = answer_offline(settings, text, clock_for(now or settings.now_override, settings.tz))
    except ConfigError as error:
        _refuse_config(error)
    typer.echo(result.report())


menu_app = typer.Typer(help="The custom menu described in config.toml, on the account.", no_args_is_help=True)
app.add_typer(menu_app, name="menu")


@contextmanager
def _wechat_api(settings: Settings) -> Iterator[tuple[EventbotWeChatClient, sessionmaker[Session]]]:
    """The WeChat API client for these settings, and the database it keeps its token (and QR codes) in;
    failed calls end the command with WeChat's error."""
    from requests import RequestException
    from wechatpy.exceptions import WeChatClientException

    from models.clock import clock_for
    from models.db import create_db_engine, session_factory
    from scheduler.wechat_client import (
        TokenUnavailable,
        build_client,
        outbound_configured,
    )

    if not outbound_configured(settings):
        typer.secho("WECHAT_APP_ID and WECHAT_APP_SECRET must be set to call WeChat's API.", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    engine = create_db_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        yield build_client(settings, sessions, clock_for(settings.now_override, settings.tz)), sessions
    except WeChatClientException as error:
        typer.secho(f"WeChat refused the call: errcode {error.errcode} {error.errmsg}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except (TokenUnavailable, RequestException) as error:
        typer.secho(f"WeChat's API could not be reached: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@menu_app.command("push")
def menu_push() -> None:
    """Create the menu described in config.toml on the account, replacing the live one."""
    from bot.menu import NoMenuConfigured, describe_menu, push_menu

    settings = _settings()
    menu = settings.content.menu
    with _wechat_api(settings) as (client, _sessions):
        try:
            body = push_menu(client, menu)
        except NoMenuConfigured as error:
            typer.secho(str(error), fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    typer.echo(f"menu pushed ({len(body['button'])} buttons):\n{describe_menu(body, menu)}")


@menu_app.command("show")
def menu_show() -> None:
    """Print the menu live on the account, and whether it is the one config.toml describes."""
    from bot.menu import describe_menu, live_menu, same_menu

    settings = _settings()
    menu = settings.content.menu
    with _wechat_api(settings) as (client, _sessions):
        live = live_menu(client)
    if live is None:
        typer.echo("no custom menu is live on the account (eventbot menu push creates it)")
        return
    typer.echo(describe_menu(live, menu))
    if same_menu(live, menu):
        typer.echo("(the same as config.toml)")
    else:
        typer.echo("(differs from config.toml: eventbot menu push replaces it)")


qr_app = typer.Typer(help="Permanent QR codes to print: the check-in code and one per channel.", no_args_is_help=True)
app.add_typer(qr_app, name="qr")
QrOutput = Annotated[Path | None, typer.Option("--output", "-o", help="The PNG to write (default: in this directory).")]


def _write_qr(settings: Settings, scene: str, output: Path) -> None:
    """Ask WeChat for the permanent code of ``scene``, draw it as ``output`` and print what it encodes."""
    from bot.qr import permanent_qr, qr_png

    with _wechat_api(settings) as (client, sessions):
        code = permanent_qr(client, sessions, scene)
    output.write_bytes(qr_png(code.url))
    typer.echo(f"{output}: scene {scene}\nencodes {code.url}\nWeChat's image: {code.ticket_url}")


@qr_app.command("checkin")
def qr_checkin(
    event: Annotated[str | None, typer.Option("--event", help="Event id (default: the current event).")] = None,
    output: QrOutput = None,
) -> None:
    """The event's check-in code: a registrant who scans it at the door is checked in."""
    from bot.qr import checkin_scene
    from models.clock import clock_for

    settings = _settings()
    now = clock_for(settings.now_override, settings.tz).now()
    chosen = settings.content.event_by_id(event) if event else settings.content.current_event(now)
    if chosen is None:
        typer.secho(f"--event: no event {event!r} in config.toml", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    _write_qr(settings, checkin_scene(chosen.id), output or Path(f"checkin-{chosen.id}.png"))


@qr_app.command("channel")
def qr_channel(
    name: Annotated[str, typer.Argument(help="A channel listed in [qr] channels of config.toml.")],
    output: QrOutput = None,
) -> None:
    """A channel's code: followers who follow through it are counted as that channel."""
    settings = _settings()
    if name not in settings.content.qr.channels:
        typer.secho(f"no channel {name!r}: add it to [qr] channels in config.toml", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    _write_qr(settings, name, output or Path(f"channel-{name}.png"))


@app.command()
def chat(
    openid: Annotated[str, typer.Option("--as", help="The follower's openid.")] = "simulated-follower",
    now: Annotated[datetime | None, typer.Option(help="Pretend it is this time (ISO 8601), e.g. 2023-03-20T10:00:00+08:00.")] = None,
    url: Annotated[str | None, typer.Option(help="Talk to a running server instead (needs WECHAT_TOKEN).")] = None,
) -> None:
    """Talk to the bot as a follower. Commands: /follow, /click KEY, /scan SCENE, /quit."""
    from bot.devtools.simulator import WeChatSimulator, describe

    if url:
        import httpx

        settings = _settings()
        client = httpx.Client(base_url=url, timeout=10)
        simulator = WeChatSimulator(client, settings.wechat_token)
        _chat_loop(simulator, openid, describe)
        return

    from fastapi.testclient import TestClient

    from bot.app import create_app
    from models.migrate import upgrade

    token = os.environ.get("WECHAT_TOKEN") or SIMULATOR_TOKEN
    # A conversation on this terminal: reminders are the server's business, not the simulator's.
    settings = _settings(wechat_token=token, run_scheduler=False, **({"now_override": now} if now else {}))
    upgrade(settings.database_url)
    with TestClient(create_app(settings)) as client:
        _chat_loop(WeChatSimulator(client, settings.wechat_token), openid, describe)


def _chat_loop(simulator, openid: str, describe) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        typer.echo("输入消息与机器人对话（/follow 关注，/click KEY 菜单，/scan 场景 扫码，/quit 退出）")
    while True:
        try:
            line = input("你> " if interactive else "").strip()
        except EOFError:
            break
        if not line:
            continue
        if line == "/quit":
            break
        if line == "/follow":
            reply = simulator.send_event(openid, "subscribe")
        elif line.startswith("/click "):
            reply = simulator.send_event(openid, "CLICK", line.removeprefix("/click ").strip())
        elif line.startswith("/scan "):
            reply = simulator.send_event(openid, "SCAN", line.removeprefix("/scan ").strip())
        else:
            reply = simulator.send_text(openid, line)
        typer.echo(f"机器人> {describe(reply)}\n")


@app.command()
def send(
    until_idle: Annotated[bool, typer.Option(help="Stop once nothing is due, instead of polling on.")] = False,
    resume: Annotated[bool, typer.Option(help="Lift an account-wide pause (quota reset, whitelist fixed) first.")] = False,
    stale_after_seconds: Annotated[
        float, typer.Option(help="Rows claimed longer ago than this belong to a dead sender and are resolved.")
    ] = 300.0,
) -> None:
    """Send the outbox (broadcasts, reminders, notices) through WeChat's API."""
    import signal
    import threading
    from datetime import timedelta

    from models.clock import clock_for
    from models.db import create_db_engine, session_factory
    from scheduler.sender import build_sender
    from scheduler.wechat_client import outbound_configured

    settings = _settings()
    if not outbound_configured(settings):
        typer.secho("WECHAT_APP_ID and WECHAT_APP_SECRET must be set to send messages.", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    engine = create_db_engine(settings.database_url)
    clock = clock_for(settings.now_override, settings.tz)
    sender = build_sender(settings, session_factory(engine), clock, stale_after=timedelta(seconds=stale_after_seconds))
    if resume:
        sender.resume()
    if until_idle:
        sender.run_until_idle()
    else:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            sender.run_forever(stop)
        except KeyboardInterrupt:
            pass
    paused = sender.pause_state()
    if paused is not None:
        typer.secho(f"sending is paused by WeChat error {paused.paused_errcode}: {paused.paused_errmsg}", fg=typer.colors.RED, err=True)
    engine.dispose()


@app.command()
def worker(
    tick_seconds: Annotated[float, typer.Option(help="How often the scheduler lock is taken or renewed.")] = 10.0,
    send_outbox: Annotated[bool, typer.Option(help="Also run the outbox sender (needs the account's credentials).")] = True,
) -> None:
    """Run the background work: the scheduler (in one process of all, by leader election) and the sender."""
    import logging
    import signal
    import threading
    from datetime import timedelta

    from models.clock import clock_for
    from models.db import create_db_engine
    from scheduler.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    engine = create_db_engine(settings.database_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run_worker(
            settings,
            engine,
            clock_for(settings.now_override, settings.tz),
            stop,
            send_outbox=send_outbox,
            interval=timedelta(seconds=tick_seconds),
        )
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


@app.command()
def reminders(
    event: Annotated[str | None, typer.Option(help="Only this event's reminders (its id in config.toml).")] = None,
) -> None:
    """List each event's reminders: when they fall due and what became of them."""
    from models.clock import clock_for
    from models.db import create_db_engine, session_factory
    from scheduler.reminders import reminder_statuses

    settings = _settings()
    if event is not None and settings.content.event_by_id(event) is None:
        typer.secho(f"no event {event!r} in {settings.config_path}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    now = clock_for(settings.now_override, settings.tz).now()
    engine = create_db_engine(settings.database_url)
    with session_factory(engine)() as session:
        statuses = reminder_statuses(session, settings.content, event)
    engine.dispose()
    current_event = None
    for status in statuses:
        reminder = status.reminder
        if reminder.event is not current_event:
            current_event = reminder.event
            typer.echo(f"{current_event.id}: {current_event.name} ({current_event.starts_at.astimezone(settings.tz):%Y-%m-%d %H:%M})")
        when = "   at start" if reminder.at_start else f"{reminder.offset_text:>4} before"
        typer.echo(f"  {when}  {reminder.due_at.astimezone(settings.tz):%Y-%m-%d %H:%M}  {_reminder_state(status, now)}")
        for line in texts.missed_lines(status.report):
            typer.echo(f"        未送达 {line}")
    if not statuses:
        typer.echo("no reminders configured (set `reminders` on an event in config.toml)")


def _reminder_state(status, now: datetime) -> str:
    """待发送, 已跳过 and why, or delivered X of N (the word follows the outcome)."""
    run = status.run
    if run is None:
        return texts.REMINDER_AWAITING_SCHEDULER if status.reminder.due_at <= now else texts.REMINDER_SCHEDULED
    if run.reason:
        return texts.reminder_skipped(run.reason)
    return status.report.summary()


@app.command("fake-wechat")
def fake_wechat(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
) -> None:
    """Serve a local fake of WeChat's API; it prints the WECHAT_APP_ID, WECHAT_APP_SECRET and
    WECHAT_API_BASE_URL to give the bot, in one line. What it accepted: GET /_fake/messages."""
    import shlex

    import uvicorn

    from bot.devtools.fake_wechat import FakeWeChat, create_fake_app
    from bot.startup import local_base_url

    app_id = os.environ.get("WECHAT_APP_ID") or "wx-fake-app"
    secret = os.environ.get("WECHAT_APP_SECRET") or "fake-app-secret"
    base_url = local_base_url(host, port)
    typer.echo(f"fake WeChat API on {base_url} (what it accepted: {base_url}/_fake/messages); run the bot with:")
    typer.echo(" ".join(
        f"{name}={shlex.quote(value)}"
        for name, value in (("WECHAT_APP_ID", app_id), ("WECHAT_APP_SECRET", secret), ("WECHAT_API_BASE_URL", base_url))
    ))
    uvicorn.run(create_fake_app(FakeWeChat(app_id, secret)), host=host, port=port, log_level="warning")


organizer_cli.install(app, _settings)

if __name__ == "__main__":
    app()
