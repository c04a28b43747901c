"""Where personal data could hide: every text column of every table, and every Redis value of the test."""

from __future__ import annotations

import json
from collections.abc import Collection

import redis
from fastapi import FastAPI
from sqlalchemy import JSON, Column, String, select

from models import Base, Registration
from models.registration import FIELD_COLUMNS

# Where a registration keeps the form's answers: the one place they belong until erased.
REGISTRATION_FIELDS = tuple(Registration.__table__.c[name] for name in FIELD_COLUMNS)


def stored_texts(app: FastAPI, *, besides: Collection[Column] = ()) -> list[str]:
    """Every text and JSON value in the database (but the columns ``besides``), and every Redis string value
    under the app's namespace."""
    found: list[str] = []
    with app.state.services.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [
                column for column in table.columns
                if isinstance(column.type, (String, JSON)) and not any(column is skipped for skipped in besides)
            ]
            for row in connection.execute(select(*columns)) if columns else []:
                found += [value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) for value in row]
    settings = app.state.services.settings
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        try:
            for name in client.scan_iter(match=f"{settings.redis_namespace}:*"):
                if client.type(name) == b"string":
                    found.append(client.get(name).decode())
        finally:
            client.close()
    return found


def holding(app: FastAPI, *needles: str, besides: Collection[Column] = ()) -> list[str]:
    """The stored values (but those of the columns ``besides``) that contain any of ``needles``."""
    return [value for value in stored_texts(app, besides=besides) if any(needle in value for needle in needles)]
