"""Every admin route refuses callers without the bearer token, found by walking the app's routes.

The routes are collected from a real app at collection time, so a route added later without the auth
dependency makes this suite fail rather than slip through.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.organizer_factories import add_registration

ADMIN_API_PREFIX = "/admin/api"
ADMIN_TOKEN = "s3cret-admin-token"
_PATH_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _routes_under(prefix: str) -> list[tuple[str, str]]:
    # No request is made here: the engine only connects on first use, so an unused in-memory URL will do.
    settings = load_settings(config_path=REPO_ROOT / "config.toml", database_url="sqlite://", wechat_token="t")
    app = create_app(settings)
    found = []
    # iter_route_contexts flattens included routers (FastAPI builds their effective routes lazily).
    for route in iter_route_contexts(app.routes):
        if route.path and route.path.startswith(prefix):
            found += [(method, route.path) for method in sorted(route.methods or {"GET"})]
    app.state.services.engine.dispose()
    return found


ADMIN_ROUTES = _routes_under(ADMIN_API_PREFIX)


def concrete(path: str) -> str:
    """The route's path with each parameter filled in (an id that need not exist: auth comes first)."""
    return _PATH_PARAMETER.sub("1", path)


def test_the_walk_finds_the_admin_api():
    paths = {path for _, path in ADMIN_ROUTES}
    assert {
        "/admin/api/events",
        "/admin/api/events/{event_id}/registrations",
        "/admin/api/events/{event_id}/registrations.csv",
        "/admin/api/events/{event_id}/registrations/{registration_id}/checkin",
        "/admin/api/events/{event_id}/checkin",
        "/admin/api/events/{event_id}/reminders",
        "/admin/api/broadcasts",
        "/admin/api/broadcasts/{broadcast_id}",
    } <= paths


@pytest.fixture
def guarded_client(make_app, make_settings):
    with TestClient(make_app(make_settings(admin_token=ADMIN_TOKEN))) as client:
        yield client


@pytest.fixture
def disabled_client(make_app, make_settings):
    with TestClient(make_app(make_settings(admin_token=""))) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_route_refuses_a_missing_token(guarded_client, method, path):
    response = guarded_client.request(method, concrete(path))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
@pytest.mark.parametrize("header", ["Bearer wrong-token", f"Bearer {ADMIN_TOKEN}x", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN])
def test_route_refuses_a_wrong_token(guarded_client, method, path, header):
    response = guarded_client.request(method, concrete(path), headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES])
def test_route_is_disabled_without_a_configured_token(disabled_client, method, path):
    response = disabled_client.request(method, concrete(path), headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503


def test_the_right_token_gets_through(guarded_client):
    response = guarded_client.get("/admin/api/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200


def test_dashboard_pages_show_nothing_before_login(guarded_client, clock):
    # The page and its assets are a static shell: all data comes from the admin API with the token the
    # organizer types in (kept in sessionStorage), so nothing under /admin outside the API shows any.
    with guarded_client.app.state.services.sessions.begin() as session:
        add_registration(session, "o-secret", now=clock.now(), name="王秘密", phone="13812345678")
    page = guarded_client.get("/admin")
    assert page.status_code == 200
    assert 'id="token" name="token" type="password"' in page.text
    assert '<div id="app" hidden>' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assets = [guarded_client.get(f"/admin/static/{name}") for name in ("dashboard.js", "dashboard.css")]
    assert all(asset.status_code == 200 for asset in assets)
    for body in [page.text, *(asset.text for asset in assets)]:
        assert "王秘密" not in body and "13812345678" not in body
