"""Fixtures shared by this directory's webhook tests (``test_webhook.py``,
``test_webhook_changes.py``): a tenant ``acme-support`` with one enabled group,
``webhook_support.GROUP``. Other tests here do not ask for it."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.db.engine import Database
from tests.factories import create_group, create_tenant
from tests.integration.webhook_support import GROUP


@pytest.fixture
async def tenant_with_group(clean_database: Database) -> tuple[Any, Any]:
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP)
    return tenant, group
