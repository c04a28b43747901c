"""CSV export that Excel opens correctly in Chinese and that cannot smuggle formulas into a spreadsheet.

A registrant chooses their own name and company, so a cell such as ``=HYPERLINK(...)`` must reach the
organizer's spreadsheet as text. Following OWASP's CSV-injection advice, a cell whose first character
is ``= + - @``, a tab or a carriage return gets a leading single quote, which spreadsheets show as text
and never evaluate; so does every part of it after a ``;`` (the separator in locales that use it), a
tab or a line break, where a spreadsheet may start a new cell. The UTF-8 byte-order mark makes Excel read the file as UTF-8 instead of GBK.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo

from models.registration import Registration

UTF8_BOM = "\ufeff"
# The start of the cell or of a part a spreadsheet may split off, spaces, then a formula trigger.
FORMULA_START = re.compile(r"(^|[;\t\r\n])( *)(?=[=+\-@\t\r])")


def neutralise_cell(value: object) -> str:
    """``value`` as a cell: empty for None, ISO 8601 for times, a leading quote before a formula trigger."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return FORMULA_START.sub(r"\1\2'", text)


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document: BOM, header, one line per row, every cell neutralised."""
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise_cell(name) for name in header])
    writer.writerows([neutralise_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()


REGISTRATION_COLUMNS = (
    "id",
    "status",
    "position",
    "name",
    "phone",
    "company",
    "title",
    "attendance",
    "checkin_code",
    "channel",
    "created_at",
    "checked_in_at",
    "openid",
)


def registrations_csv(rows: Iterable[tuple[Registration, str | None]], tz: tzinfo) -> str:
    """Registrations (with their channel, as ``organizer.search_registrations`` gives them) as CSV; times in ``tz``."""

    def cells(registration: Registration, channel: str | None) -> list[object]:
        values = {column: getattr(registration, column, None) for column in REGISTRATION_COLUMNS}
        values["channel"] = channel
        for moment in ("created_at", "checked_in_at"):
            if values[moment] is not None:
                values[moment] = values[moment].astimezone(tz)
        return [values[column] for column in REGISTRATION_COLUMNS]

    return to_csv(REGISTRATION_COLUMNS, (cells(*row) for row in rows))
