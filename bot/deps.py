"""FastAPI dependencies as ``Annotated`` aliases, so routes name what they need and tests override them."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from bot.services import Services
from bot.settings import Settings
from models.clock import Clock

_bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.services.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.services.clock


def get_now(clock: Annotated[Clock, Depends(get_clock)]) -> datetime:
    return clock.now()


def get_session(request: Request) -> Iterator[Session]:
    """A session whose transaction commits when the route returns without error."""
    with request.app.state.services.sessions.begin() as session:
        yield session


def check_bearer(credentials: HTTPAuthorizationCredentials | None, expected: str, variable: str) -> None:
    """The bearer token must equal ``expected`` (constant-time compare); 503 while ``variable`` is unset."""
    if not expected:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"disabled: {variable} is not set")
    supplied = credentials.credentials if credentials else ""
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing bearer token", {"WWW-Authenticate": "Bearer"})


def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The name of the bearer token (``ADMIN_TOKENS`` or ``ADMIN_TOKEN``), each compared in constant time;
    503 when no token is configured."""
    if not settings.admin_tokens:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "disabled: neither ADMIN_TOKEN nor ADMIN_TOKENS is set")
    supplied = (credentials.credentials if credentials else "").encode()
    # Every token is compared, so the time taken does not tell which one came closest.
    matches = [name for token, name in settings.admin_tokens.items() if hmac.compare_digest(supplied, token.encode())]
    if not matches:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing bearer token", {"WWW-Authenticate": "Bearer"})
    return matches[0]


def require_metrics_reader(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer ``METRICS_TOKEN`` (Prometheus' own, not the admin's); 503 when none is configured."""
    check_bearer(credentials, settings.metrics_token, "METRICS_TOKEN")


def get_services(request: Request) -> Services:
    return request.app.state.services


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServicesDep = Annotated[Services, Depends(get_services)]
ClockDep = Annotated[Clock, Depends(get_clock)]
NowDep = Annotated[datetime, Depends(get_now)]
# scope="function": commit before the response is sent. FastAPI's default ends a yield dependency only
# after sending, so a client could read before the commit (404 for what it just created) or be told 2xx
# for a transaction that then failed to commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
# A row id in a path: bounded to what every database's integer key holds (422 beyond, not a 500).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
AdminDep = Depends(require_admin)
MetricsDep = Depends(require_metrics_reader)
# The admin's name, for routes that record who did what (the same dependency: checked once per request).
AdminNameDep = Annotated[str, AdminDep]
