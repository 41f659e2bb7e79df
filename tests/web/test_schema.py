"""The API against its own OpenAPI schema, with schemathesis generating the requests.

Read routes and `POST /api/news` are fuzzed against the running bot; every answer must be
documented and match its declared model, and nothing may be a server error. The stream and
the controls (which pause or flatten the shared test bot) are left to their own tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.xdist_group("web")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_api_answers_match_the_schema(stack: RunningStack) -> None:
    auth = {"Authorization": f"Bearer {stack.token}"}
    raw = httpx.get(stack.url + "/openapi.json", headers=auth, trust_env=False).json()
    schema = schemathesis.openapi.from_dict(raw).exclude(path_regex=r"^/api/(stream|control/.*|login)$")
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=stack.url, headers=auth, checks=CHECKS)

        check()
    assert {"POST /api/news", "GET /api/positions", "GET /api/stats", "GET /metrics"} <= set(tested), tested
