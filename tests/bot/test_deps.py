"""Dependencies: a route's transaction is committed before its response leaves the server."""

from __future__ import annotations

import json

import anyio
from sqlalchemy import func, select

from models import Campaign
from tests.organizer_factories import ADMIN_TOKEN, add_registration


def test_a_write_is_committed_before_the_response_starts(make_app, make_settings, clock):
    app = make_app(make_settings(admin_token=ADMIN_TOKEN))
    with app.state.services.sessions.begin() as session:
        add_registration(session, "o-alice", now=clock.now())
    body = json.dumps({"event_id": "meetup-10", "audience": "confirmed", "text": "hi"}).encode()
    seen_at_response_start: list[int] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            # Another connection, as the client's next request would use: it sees only committed rows.
            with app.state.services.sessions() as reader:
                seen_at_response_start.append(reader.scalar(select(func.count()).select_from(Campaign)))
            assert message["status"] == 201

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/admin/api/broadcasts",
        "raw_path": b"/admin/api/broadcasts",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    assert seen_at_response_start == [1]
