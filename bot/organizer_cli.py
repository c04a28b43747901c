"""The organizer's commands of the ``eventbot`` CLI: registrations, stats, broadcast, checkin.

They run the same ``bot.organizer`` functions as the admin API and the in-chat commands, against the
database in ``DATABASE_URL``, so an organizer can work over SSH on the server. ``install`` adds them to
the main Typer app, which passes in how it loads settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from bot.admin.export import registrations_csv, registrations_xlsx
from bot.settings import Settings
from models import organizer, privacy
from models.audit import EXPORT_CSV, EXPORT_XLSX, record_access
from models.clock import clock_for
from models.content import Event
from models.db import create_db_engine, session_factory
from models.redact import mask_phone_numbers

EventOption = Annotated[
    str | None, typer.Option("--event", help="Event id from config.toml (default: the current event).")
]
# Who the audit trail names for an export made on the server.
CLI_ACTOR = "cli"
StatusOption = Annotated[str | None, typer.Option("--status", help="confirmed, waitlisted or cancelled.")]


@dataclass(frozen=True)
class Workspace:
    """What a command works with: settings, the event, the bot's time and a transaction."""

    settings: Settings
    event: Event
    now: datetime
    session: Session


def install(app: typer.Typer, load_settings: Callable[[], Settings]) -> None:
    """Add the organizer's commands to ``app``."""

    @contextmanager
    def workspace(event_id: str | None) -> Iterator[Workspace]:
        settings = load_settings()
        now = clock_for(settings.now_override, settings.tz).now()
        try:
            event = organizer.require_event(settings.content, event_id) if event_id else settings.content.current_event(now)
        except organizer.NotFound as error:
            typer.secho(str(error), fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        engine = create_db_engine(settings.database_url)
        try:
            with session_factory(engine).begin() as session:
                yield Workspace(settings, event, now, session)
        finally:
            engine.dispose()

    def check_status(status: str | None) -> None:
        if status is not None and status not in organizer.STATUSES:
            typer.secho(f"--status: use one of {', '.join(organizer.STATUSES)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)

    registrations_app = typer.Typer(help="An event's registrations.", no_args_is_help=True)
    app.add_typer(registrations_app, name="registrations")

    @registrations_app.command("list")
    def registrations_list(
        event: EventOption = None,
        status: StatusOption = None,
        query: Annotated[str, typer.Option("--query", "-q", help="Name, company, code or phone suffix.")] = "",
    ) -> None:
        """List registrations (phones masked), oldest first."""
        check_status(status)
        with workspace(event) as work:
            rows, total = organizer.search_registrations(work.session, work.event.id, q=query, status=status)
            for registration, channel in rows:
                typer.echo(
                    "\t".join(
                        [
                            str(registration.id),
                            registration.status,
                            registration.checkin_code,
                            registration.name or "",
                            mask_phone_numbers(registration.phone or ""),
                            registration.company or "",
                            channel or "",
                            "checked in" if registration.checked_in_at else "",
                        ]
                    )
                )
            typer.echo(f"{total} registrations", err=True)

    @registrations_app.command("export")
    def registrations_export(
        event: EventOption = None,
        status: StatusOption = None,
        csv_file: Annotated[
            Path | None, typer.Option("--csv", help="Write to this file (default: standard output).")
        ] = None,
        xlsx_file: Annotated[Path | None, typer.Option("--xlsx", help="Write an Excel workbook to this file.")] = None,
        raw: Annotated[
            bool, typer.Option("--raw", help="Machine column names and values, ISO times (default: Chinese).")
        ] = False,
    ) -> None:
        """Export registrations as CSV (UTF-8 with BOM, safe to open in Excel) or .xlsx, in Chinese."""
        check_status(status)
        with workspace(event) as work:
            rows, total = organizer.search_registrations(work.session, work.event.id, status=status)
            if xlsx_file is not None:
                xlsx_file.write_bytes(registrations_xlsx(rows, work.settings.tz, raw=raw))
                record_access(
                    work.session, actor=CLI_ACTOR, action=EXPORT_XLSX, now=work.now, rows=total, event_id=work.event.id
                )
                typer.echo(f"{total} registrations written to {xlsx_file}", err=True)
                return
            document = registrations_csv(rows, work.settings.tz, raw=raw)
            record_access(work.session, actor=CLI_ACTOR, action=EXPORT_CSV, now=work.now, rows=total, event_id=work.event.id)
        if csv_file is None:
            typer.echo(document, nl=False)
        else:
            csv_file.write_text(document, encoding="utf-8", newline="")
            typer.echo(f"{total} registrations written to {csv_file}", err=True)

    inbox_app = typer.Typer(help="Followers' questions the bot could not answer.", no_args_is_help=True)
    app.add_typer(inbox_app, name="inbox")

    @inbox_app.command("list")
    def inbox_list(event: EventOption = None) -> None:
        """Open questions grouped (id, how many asked, wording), then the latest answers and their delivery."""
        with workspace(event) as work:
            groups = organizer.open_groups(work.session, work.event.id)
            answered = organizer.answered_questions(work.session, work.event.id)
            for group in groups:
                typer.echo(f"{group.id}\t{group.askers}\t{group.text}")
            for item in answered:
                typer.echo(f"{item.question.id}\tanswered\t{item.question.text}\t{item.delivery or ''}")
        typer.echo(f"{len(groups)} open question groups", err=True)

    @inbox_app.command("answer")
    def inbox_answer(
        question_id: Annotated[int, typer.Argument(help="An open question's id (from `inbox list`).")],
        text: Annotated[str, typer.Argument(help="The answer.")],
        event: EventOption = None,
    ) -> None:
        """Answer everyone who asked this question (customer-service messages); print a rule that would answer it."""
        with workspace(event) as work:
            try:
                group = organizer.answer_group(work.session, question_id, text, work.now)
            except organizer.UnknownQuestion as error:
                typer.secho(str(error), fg=typer.colors.RED, err=True)
                raise typer.Exit(1) from None
            rule = organizer.rule_toml(group[0].words, text, group[0].event_id)
        typer.echo(f"answered {len(group)} followers; to answer it from now on, add to config.toml:", err=True)
        typer.echo(rule, nl=False)

    privacy_app = typer.Typer(help="Personal data kept by the bot.", no_args_is_help=True)
    app.add_typer(privacy_app, name="privacy")

    @privacy_app.command("purge")
    def privacy_purge(
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be erased.")] = False,
    ) -> None:
        """Erase the personal fields of events ended [privacy] keep_days_after_event ago (the worker does it too)."""
        with workspace(None) as work:
            purges = privacy.purge_expired(work.session, work.settings.content, work.now, dry_run=dry_run)
            keep_days = work.settings.content.privacy.keep_days_after_event
        verb = "would be erased" if dry_run else "erased"
        for purge in purges:
            count = purge.organizer_messages
            messages = f", and {count} messages to organizers that name them" if count else ""
            typer.echo(f"{purge.event_id}: personal fields of {purge.registrations} registrations {verb}{messages}")
        if not purges:
            typer.echo(f"nothing to erase: personal fields are kept {keep_days} days after an event ends")

    @app.command("stats")
    def stats(event: EventOption = None) -> None:
        """Registration counts of an event."""
        with workspace(event) as work:
            figures = organizer.event_stats(work.session, work.settings.content, work.event, work.now)
        typer.echo(f"{work.event.id}: {work.event.name}")
        typer.echo(f"on site {figures.onsite}/{work.event.capacity} ({figures.seats_left} seats left, "
                   f"{figures.walk_ins} walk-ins), online {figures.online}, waitlisted {figures.waitlisted}, "
                   f"cancelled {figures.cancelled}, checked in {figures.checked_in}, today {figures.registered_today}")
        for day, count in figures.per_day:
            typer.echo(f"  {day.isoformat()}  {count}")
        for channel, count in figures.by_channel:
            typer.echo(f"  channel {channel or '(direct)'}: {count}")

    @app.command("broadcast")
    def broadcast(
        text: Annotated[str, typer.Argument(help="The message.")],
        audience: Annotated[str, typer.Option(help=", ".join(organizer.AUDIENCES))],
        event: EventOption = None,
        at: Annotated[
            datetime | None, typer.Option("--at", help="Send at this time (ISO 8601; bot timezone if none given).")
        ] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    ) -> None:
        """Send TEXT to an audience of an event's registrants (the worker's sender delivers it)."""
        if audience not in organizer.AUDIENCES:
            typer.secho(f"--audience: use one of {', '.join(organizer.AUDIENCES)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        with workspace(event) as work:
            send_at = at.replace(tzinfo=work.settings.tz) if at and at.tzinfo is None else at
            if send_at is not None and send_at <= work.now:
                typer.secho("--at: that time has passed", fg=typer.colors.RED, err=True)
                raise typer.Exit(2)
            size = len(organizer.audience_openids(work.session, work.event.id, audience))
            when = f"at {send_at.isoformat()}" if send_at else "now"
            typer.echo(f"{size} recipients ({audience}, {work.event.id}), {when}:\n{text}")
            if not yes and not typer.confirm("Send?"):
                raise typer.Exit(1)
            campaign = organizer.create_broadcast(
                work.session, event_id=work.event.id, audience=audience, text=text, now=work.now, send_at=send_at
            )
            if send_at is None:
                typer.echo(f"broadcast {campaign.id}: {campaign.recipients} recipients")
            else:
                typer.echo(f"broadcast {campaign.id}: scheduled; its recipients are the {audience} audience at that time")

    @app.command("checkin")
    def checkin(
        code: Annotated[str, typer.Argument(help="The registrant's check-in code.")], event: EventOption = None
    ) -> None:
        """Check a registrant in by code."""
        with workspace(event) as work:
            try:
                done = organizer.check_in_by_code(work.session, work.event.id, code, work.now)
            except (organizer.NotFound, organizer.NotConfirmed) as error:
                typer.secho(str(error), fg=typer.colors.RED, err=True)
                raise typer.Exit(1) from None
            registration = done.registration
            state = "already checked in" if done.already else "checked in"
            typer.echo(f"{registration.checkin_code} {registration.name or ''}: {state}")
            if done.warning:
                typer.secho(done.warning, fg=typer.colors.YELLOW)
