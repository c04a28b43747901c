"""Where personal data could hide: every text column of every table, and every Redis value of the test."""

from __future__ import annotations

import json

import redis
from fastapi import FastAPI
from sqlalchemy import JSON, String, select

from models import Base


def stored_texts(app: FastAPI) -> list[str]:
    """Every text and JSON value in the database, and every Redis string value under the app's namespace."""
    found: list[str] = []
    with app.state.services.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [column for column in table.columns if isinstance(column.type, (String, JSON))]
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


def holding(app: FastAPI, *needles: str) -> list[str]:
    """The stored values that contain any of ``needles``."""
    return [value for value in stored_texts(app) if any(needle in value for needle in needles)]
