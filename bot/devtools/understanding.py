"""How well the bot understands what followers type: a corpus of realistic messages, each sent through
the real responder at the clock times it names, and whether the expected topic, rule or form step
answered it. Used by ``bench/understanding.py`` (prints accuracy and misses) and by the corpus test.

The corpus is a tab-separated file (``tests/fixtures/understanding_corpus.tsv``): phases, expected
answer, message. A form case (``form@phone:answered``) first fills the form up to that step (after 同意 to the notice);
its outcome is ``next`` (taken), ``answered`` (a question answered, the step asked again), ``refused`` or
``confirm`` (taken once the follower confirms it: a lone letter as a name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.devtools.simulator import push_xml
from bot.responder import Responder, Response
from bot.wechat import parse_push
from models import texts
from models.clock import ManualClock
from models.content import Content, Event

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "understanding_corpus.tsv"
# Answers given to the form's steps before the one a form case is about, in the shipped field order.
FORM_ANSWERS = {"name": "张三", "phone": "13812345678", "company": "某科技公司", "title": "工程师"}
FORM_STEPS = ("name", "phone", "company", "title", "attendance")


@dataclass(frozen=True)
class Case:
    phases: tuple[str, ...]
    expected: str
    text: str


@dataclass(frozen=True)
class Result:
    case: Case
    phase: str
    got: str
    reply: str

    @property
    def right(self) -> bool:
        return self.got == self.case.expected


def load_corpus(path: Path = CORPUS) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phases, expected, text = line.split("\t")
        cases.append(Case(("before", "during", "after") if phases == "all" else tuple(phases.split(",")), expected, text))
    return cases


def phase_times(event: Event) -> dict[str, datetime]:
    """A moment before the event (six days ahead), half an hour into it, and the day after."""
    return {
        "before": event.starts_at - timedelta(days=6),
        "during": event.starts_at + timedelta(minutes=30),
        "after": event.ends_at + timedelta(hours=17),
    }


class CorpusRun:
    """Sends each case from a follower of its own through ``responder``, with ``clock`` at the case's phase."""

    def __init__(self, responder: Responder, clock: ManualClock, content: Content) -> None:
        self.responder, self.clock, self.content = responder, clock, content
        self.times = phase_times(content.events[0])
        self._followers = 0

    def _send(self, openid: str, text: str) -> Response:
        self._followers += 1
        return self.responder.respond(parse_push(push_xml(openid, "text", {"Content": text, "MsgId": self._followers})))

    def run(self, cases: Iterable[Case], progress: Callable[[Result], None] | None = None) -> list[Result]:
        results = []
        for case in cases:
            for phase in case.phases:
                self.clock.set(self.times[phase])
                result = self._one(case, phase)
                results.append(result)
                if progress:
                    progress(result)
        return results

    def _one(self, case: Case, phase: str) -> Result:
        openid = f"corpus-{self._followers}"
        if not case.expected.startswith("form@"):
            response = self._send(openid, case.text)
            return Result(case, phase, self._answered_by(response, case.text), self._content(response))
        step = case.expected.removeprefix("form@").split(":")[0]
        self._send(openid, "报名")
        self._send(openid, "同意")  # the privacy notice comes before the first field
        for earlier in FORM_STEPS[: FORM_STEPS.index(step)]:
            self._send(openid, FORM_ANSWERS.get(earlier, ""))
        response = self._send(openid, case.text)
        return Result(case, phase, f"form@{step}:{self._form_outcome(step, response)}", self._content(response))

    def _answered_by(self, response: Response, text: str) -> str:
        if response.topic == "rule":
            now = self.clock.now()
            match = self.responder.rules.match(text, now, self.content.current_event(now).id)
            return f"rule:{match.rule.name}" if match else "rule"
        return response.topic

    def _form_outcome(self, step: str, response: Response) -> str:
        reply = self._content(response)
        if reply.endswith(texts.NAME_CONFIRM_PROMPT):
            return "confirm"
        prompt = self.content.registration.prompts.get(step, "")
        if not reply.endswith(prompt):
            return "next"
        event = self.content.events[0]
        return "answered" if event.name in reply or "你正在填写报名信息" in reply else "refused"

    @staticmethod
    def _content(response: Response) -> str:
        return getattr(response.reply, "content", "") or ""


def accuracy(results: list[Result]) -> float:
    return sum(result.right for result in results) / len(results) if results else 0.0
