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
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo

from models import texts
from models.redact import hash_openid
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
    "walk_in",
    "checkin_code",
    "channel",
    "created_at",
    "checked_in_at",
    "openid_hash",
)
# Times an organizer reads: local, to the second.
READABLE_TIME = "%Y-%m-%d %H:%M:%S"


def registration_table(
    rows: Iterable[tuple[Registration, str | None]], tz: tzinfo, *, raw: bool = False
) -> tuple[list[str], list[list[object]]]:
    """Registrations (with their channel, as ``organizer.search_registrations`` gives them) as a header and
    rows, times in ``tz``: in Chinese for people (headers, 已确认, 现场, 2023-03-20 10:00:00), or with
    ``raw`` the machine names and ISO times a script reads. Either way the follower is their hashed openid."""

    def cells(registration: Registration, channel: str | None) -> list[object]:
        values = {column: getattr(registration, column, None) for column in REGISTRATION_COLUMNS}
        values["channel"] = channel
        values["openid_hash"] = hash_openid(registration.openid)  # never the openid itself, raw or not
        for moment in ("created_at", "checked_in_at"):
            if values[moment] is not None:
                values[moment] = values[moment].astimezone(tz)
        if not raw:
            values = texts.export_values(values, READABLE_TIME)
        return [values[column] for column in REGISTRATION_COLUMNS]

    header = list(REGISTRATION_COLUMNS) if raw else [texts.EXPORT_HEADERS[column] for column in REGISTRATION_COLUMNS]
    return header, [cells(*row) for row in rows]


def registrations_csv(rows: Iterable[tuple[Registration, str | None]], tz: tzinfo, *, raw: bool = False) -> str:
    """Registrations as CSV (see ``registration_table``)."""
    return to_csv(*registration_table(rows, tz, raw=raw))


# Column widths in characters, where a CJK character counts two; wide enough for a header or a cell.
MIN_COLUMN_WIDTH = 6
MAX_COLUMN_WIDTH = 40


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence[object]], *, sheet: str) -> bytes:
    """A workbook of one sheet: a bold, frozen header row, columns as wide as their content, every text cell
    stored as text (openpyxl would otherwise make ``=…`` a formula)."""
    # Imported here: openpyxl is the slowest import of the admin API, and only exports need it.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    worksheet.append(list(header))
    for cell in worksheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        worksheet.append(list(row))
        for cell in worksheet[worksheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    worksheet.freeze_panes = "A2"
    for column in worksheet.columns:
        width = max(_display_width("" if cell.value is None else str(cell.value)) for cell in column)
        worksheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def registrations_xlsx(rows: Iterable[tuple[Registration, str | None]], tz: tzinfo, *, raw: bool = False) -> bytes:
    """Registrations as an Excel workbook (see ``registration_table``)."""
    return to_xlsx(*registration_table(rows, tz, raw=raw), sheet="报名名单")
