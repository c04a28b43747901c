"""Baseline (b): WeRoBot 1.13, the established Python WeChat framework, answering the same keyword.

Runs from its own virtualenv (bench/.venv-werobot) under gunicorn with 2 sync workers, WeRoBot's
documented deployment. Sessions are off: our agenda answer needs no conversation state either.
Environment: WECHAT_TOKEN, BENCH_ANSWER_FILE (the agenda text eventbot answers).
"""

import os
from pathlib import Path

import werobot

ANSWER = Path(os.environ["BENCH_ANSWER_FILE"]).read_text(encoding="utf-8")

robot = werobot.WeRoBot(token=os.environ["WECHAT_TOKEN"], enable_session=False)


@robot.filter("议程")
def agenda(message):
    return ANSWER


application = robot.wsgi
