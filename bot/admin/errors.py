"""The organizer service's exceptions as HTTP answers, for every admin route."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status

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
