"""Settings read once from the environment.

A frozen dataclass rather than a pydantic model: this module is on the cancel path, and
pydantic's first model costs more cold start than the whole rest of that function.
"""

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    tenant_claim: str
    local_tenant_header: bool
    retention_days: int
    service: str


@cache
def settings() -> Settings:
    """The process's settings; tests clear the cache after changing the environment."""
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "runstop-runs"),
        tenant_claim=os.environ.get("TENANT_CLAIM", "tenant_id"),
        # Only the local runner sets this: it turns the X-Tenant-Id header into the claim.
        local_tenant_header=os.environ.get("RUNSTOP_LOCAL") == "1",
        retention_days=int(os.environ.get("RETENTION_DAYS", "30")),
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", "runstop"),
    )
