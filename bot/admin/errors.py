"""The admin API's errors as HTTP answers: the organizer service's exceptions, and bad input (422), in Chinese."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from models import texts
from models.organizer import AlreadyStarted, NotConfirmed, NotFound, RoomFull


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn NotFound into 404, NotConfirmed, AlreadyStarted and RoomFull into 409, with the service's (Chinese)
    message as the detail."""
    try:
        yield
    except NotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except (NotConfirmed, AlreadyStarted, RoomFull) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None


class InputProblem(BaseModel):
    """One field refused: where (FastAPI's ``loc``), its name, pydantic's error type and the Chinese message."""

    loc: list[str | int]
    field: str
    type: str
    msg: str


class InputProblems(BaseModel):
    """A 422 of the admin API: ``detail`` names every field refused, in Chinese; ``errors`` lists them."""

    detail: str
    errors: list[InputProblem]


# The admin API's routes declare this as their 422, instead of FastAPI's English HTTPValidationError.
INPUT_PROBLEMS_RESPONSE = {status.HTTP_422_UNPROCESSABLE_CONTENT: {"model": InputProblems, "description": "输入有误"}}


def invalid_input(field: str, value: Any, message: str) -> RequestValidationError:
    """A refusal of a body field that passed its schema but not a rule of the route (a past time, a phone)."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "input": value, "msg": message}])


def _problem(error: dict) -> InputProblem:
    loc = list(error["loc"])
    # The innermost name: ("body", "send_at") is send_at; ("body", 12), a spot in unparsable JSON, the body.
    field = next((part for part in reversed(loc[1:]) if isinstance(part, str)), loc[0])
    context = dict(error.get("ctx") or {})
    if "expected" in context:  # pydantic lists a Literal's values in English ("'a', 'b' or 'c'")
        context["expected"] = "、".join(re.findall(r"'([^']*)'", str(context["expected"]))) or context["expected"]
    if error["type"] == "value_error":
        # The rule's own (Chinese) message: a validator's ValueError, or invalid_input's.
        message = str(context.get("error") or error["msg"])
    else:
        message = texts.INPUT_PROBLEMS.get(error["type"], texts.INPUT_PROBLEM_UNKNOWN).format_map(context)
    return InputProblem(loc=loc, field=field, type=error["type"], msg=message)


async def chinese_input_errors(_request: Request, error: RequestValidationError) -> JSONResponse:
    """A 422 in Chinese, which the dashboard shows as it is. Only the admin API's routes take typed input
    (the webhook reads its query as optional strings), so it is in effect the admin API's answer."""
    problems = [_problem(item) for item in error.errors()]
    detail = "；".join(texts.field_problem(problem.field, problem.msg) for problem in problems)
    body = InputProblems(detail=detail, errors=problems)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
