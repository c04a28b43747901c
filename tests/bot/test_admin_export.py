"""The CSV helper: Excel-friendly encoding and formula-injection neutralisation."""

import csv
import io
from datetime import datetime, timezone

import pytest

from bot.admin.export import UTF8_BOM, neutralise_cell, to_csv


def read_back(document: str) -> list[list[str]]:
    assert document.startswith(UTF8_BOM)
    return list(csv.reader(io.StringIO(document.removeprefix(UTF8_BOM), newline="")))


@pytest.mark.parametrize("dangerous", ["=1+1", "+86 138", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")'])
def test_formula_triggers_get_a_leading_quote(dangerous):
    assert neutralise_cell(dangerous) == "'" + dangerous


@pytest.mark.parametrize(
    ("dangerous", "defused"),
    [("a;=1+1", "a;'=1+1"), ("张三; @SUM(A1)", "张三; '@SUM(A1)"), ("x\t=cmd", "x\t'=cmd"), ("x\r=cmd", "x\r'=cmd"),
     ("x\n-1+2", "x\n'-1+2"), ("\t=cmd", "'\t'=cmd"), ("\r=cmd", "'\r'=cmd"), (" =1", " '=1")],
)
def test_formulas_after_a_separator_or_led_by_tab_cr_or_spaces_are_defused(dangerous, defused):
    assert neutralise_cell(dangerous) == defused


@pytest.mark.parametrize("harmless", ["张三", "火山引擎 😀", "a=b", "13812345678", "'quoted", ""])
def test_ordinary_values_are_unchanged(harmless):
    assert neutralise_cell(harmless) == harmless


def test_none_is_empty_and_times_are_iso():
    moment = datetime(2023, 3, 20, 2, 0, tzinfo=timezone.utc)
    assert neutralise_cell(None) == ""
    assert neutralise_cell(moment) == "2023-03-20T02:00:00+00:00"
    assert neutralise_cell(7) == "7"


def test_round_trip_keeps_chinese_emoji_quotes_and_newlines_and_defuses_formulas():
    rows = [
        ["张三", "字节跳动 🚀", 'say "hi"', "line one\nline two"],
        ["=cmd|' /C calc'!A0", "@evil", "-1", "+1"],
    ]
    back = read_back(to_csv(["name", "company", "note", "extra"], rows))
    assert back[0] == ["name", "company", "note", "extra"]
    assert back[1] == rows[0]
    assert back[2] == ["'=cmd|' /C calc'!A0", "'@evil", "'-1", "'+1"]


def test_document_is_utf8_with_a_single_bom_and_crlf_lines():
    document = to_csv(["姓名"], [["李四"]])
    encoded = document.encode("utf-8")
    assert encoded.startswith(b"\xef\xbb\xbf") and encoded.count(b"\xef\xbb\xbf") == 1
    assert document == UTF8_BOM + "姓名\r\n李四\r\n"
