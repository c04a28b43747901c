"""schemathesis against the admin API's own OpenAPI description, with the token: whatever it generates
from the schema (valid and invalid values), never a 5xx, and every response matches its declared schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from bot.app import create_app
from bot.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.organizer_factories import add_registration


def _admin_api_schema():
    # The schema only, from an app that never connects: no request is made at collection time.
    settings = load_settings(config_path=REPO_ROOT / "config.toml", database_url="sqlite://", wechat_token="t")
    return schemathesis.openapi.from_dict(create_app(settings).openapi()).include(path_regex="^/admin/api/")


schema = _admin_api_schema()


@pytest.fixture
def seeded_admin_api(admin_api, sessions, clock):
    """The admin client, with registrations to list, search and export (a confirmed and a waitlisted one)."""
    with sessions.begin() as session:
        add_registration(session, "o-schema-1", now=clock.now(), capacity=1, name="=HYPERLINK(1)")
        add_registration(session, "o-schema-2", now=clock.now(), capacity=1, phone="13900001111")
    return admin_api


@schema.parametrize()
# The loaded profile's example count (tests/conftest.py), which schemathesis would replace with its own.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_the_admin_api_keeps_to_its_schema(case, seeded_admin_api):
    request = case.as_transport_kwargs(base_url=str(seeded_admin_api.base_url))
    request.pop("cookies", None)  # the admin API reads none; per-request cookies are deprecated in httpx
    if isinstance(request.get("data"), bytes | str):  # raw bodies go as content= in httpx
        request["content"] = request.pop("data")
    response = seeded_admin_api.request(**request)
    case.validate_response(
        response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
    )
