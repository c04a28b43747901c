"""The README's commands are the CLI's: every ``eventbot …`` it shows exists, with the options it shows."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
# `eventbot …` in running text, and lines of code blocks that start with it (after .venv/bin/ or a variable).
MENTIONS = re.findall(r"`(?:\.venv/bin/)?eventbot ([^`]+)`", README) + re.findall(
    r"^(?:[A-Z_]+=\S+ )?(?:\.venv/bin/)?eventbot ([^\n#]+)", README, re.MULTILINE
)
SUBCOMMAND = re.compile(r"^[a-z][a-z|-]*$")


def documented_commands() -> dict[tuple[str, ...], set[str]]:
    """Each command path the README shows (``menu push|show`` would be two), with its options."""
    commands: dict[tuple[str, ...], set[str]] = {}
    for mention in MENTIONS:
        words = mention.split()
        path: list[str] = []
        while words and SUBCOMMAND.match(words[0]):
            path.append(words.pop(0))
        options = set(re.findall(r"--[a-z][a-z-]*", mention))
        for leaf in path[-1].split("|"):
            commands.setdefault((*path[:-1], leaf), set()).update(options)
    return commands


def test_the_readme_shows_commands():
    assert {("serve",), ("chat",), ("fake-wechat",), ("registrations", "export")} <= set(documented_commands())


@pytest.mark.parametrize(
    "command, options",
    [pytest.param(command, sorted(options), id=" ".join(command)) for command, options in sorted(documented_commands().items())],
)
def test_each_command_in_the_readme_has_the_options_it_shows(command, options):
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)

    assert result.exit_code == 0, result.output
    assert [option for option in options if option not in result.output] == []
