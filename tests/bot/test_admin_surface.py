"""What the admin surface shows to whom: docs, metrics, bounds on paging, and times that have passed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models import Campaign
from tests.conftest import METRICS_AUTH
from tests.organizer_factories import ADMIN_TOKEN, AUTH, EVENT_ID


@pytest.fixture
def admin(admin_app):
    """A client of the conftest's ``admin_app`` that sends no token unless told to."""
    with TestClient(admin_app) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_the_api_description_is_not_published_by_default(admin, path):
    assert admin.get(path).status_code == 404
    assert admin.get(path, headers=AUTH).status_code == 404


def test_admin_docs_serve_the_schema_only_to_the_admin(make_app, make_settings):
    with TestClient(make_app(make_settings(admin_token=ADMIN_TOKEN, admin_docs=True))) as client:
        assert client.get("/openapi.json").status_code == 401
        schema = client.get("/openapi.json", headers=AUTH)
    assert schema.status_code == 200 and "/admin/api/broadcasts" in schema.json()["paths"]


def test_admin_docs_take_every_named_admin_token_as_the_admin_api_does(make_app, make_settings):
    settings = make_settings(admin_tokens_raw="alice:token-of-alice,bob:token-of-bob", admin_docs=True)
    with TestClient(make_app(settings)) as client:
        for token in ("token-of-alice", "token-of-bob"):
            assert client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/openapi.json", headers={"Authorization": "Bearer token-of-carol"}).status_code == 401
        assert client.get("/docs", headers={"Authorization": "Bearer token-of-alice"}).status_code == 404  # no Swagger page
    with TestClient(make_app(make_settings(admin_docs=True))) as client:
        assert client.get("/openapi.json").status_code == 503  # no admin token configured at all


def test_metrics_need_their_own_token(admin):
    assert admin.get("/metrics").status_code == 401
    assert admin.get("/metrics", headers=AUTH).status_code == 401  # the admin's token is not Prometheus'
    assert admin.get("/metrics", headers=METRICS_AUTH).status_code == 200


def test_metrics_are_off_without_a_token(make_app, make_settings):
    with TestClient(make_app(make_settings(metrics_token=""))) as client:
        assert client.get("/metrics").status_code == 503


@pytest.mark.parametrize("query", [{"page": 2**63}, {"page": 100_001}, {"page": 0}, {"page_size": 0}, {"page_size": 501}])
def test_paging_out_of_bounds_is_a_422(admin, query):
    assert admin.get(f"/admin/api/events/{EVENT_ID}/registrations", headers=AUTH, params=query).status_code == 422


@pytest.mark.parametrize("send_at", ["1970-01-01T00:00:00Z", "2023-03-20T09:59:00+08:00"])
def test_a_broadcast_time_that_has_passed_is_refused(admin, admin_app, send_at):
    response = admin.post(
        "/admin/api/broadcasts", headers=AUTH,
        json={"event_id": EVENT_ID, "audience": "confirmed", "text": "会前提醒", "send_at": send_at},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "send_at"]
    with admin_app.state.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


@pytest.mark.parametrize("path", [f"/admin/api/broadcasts/{2**63}", f"/admin/api/events/{EVENT_ID}/registrations/{2**63}/checkin"])
def test_row_ids_beyond_any_database_integer_are_a_422(admin, path):
    method = admin.post if path.endswith("checkin") else admin.get
    assert method(path, headers=AUTH).status_code == 422
