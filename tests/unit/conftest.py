"""Fixtures shared by the handler tests: the in-process API over moto tables and queues."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import new_user
from tests.unit.api import Api


@pytest.fixture
def api(aws: dict[str, Any]) -> Api:
    return Api()


@pytest.fixture
def deployed(api: Api) -> tuple[str, int, str]:
    """(owner, flow id, deployment id) of a public, anonymous-startable flow."""
    owner = new_user()
    flow_id = api.create_flow(owner, is_public=True, start_shared=True, start_unverified=True)
    return owner, flow_id, api.deploy(owner, flow_id)
