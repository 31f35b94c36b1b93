"""Finding the real PostgreSQL, RabbitMQ and Redis the suite runs against.

Where a service is missing, a test that needs it is skipped with the reason;
with BROADSHEET_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

REQUIRE_SERVICES = os.environ.get("BROADSHEET_REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get(
    "BROADSHEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("BROADSHEET_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("BROADSHEET_TEST_REDIS", "redis://127.0.0.1:6379/0")


def reachable(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout):
            return True
    except OSError:
        return False


def missing(reason: str) -> None:
    """Skip (or, under CI, fail) the running test because a service is missing."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}; BROADSHEET_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(reason)


def require_postgres() -> None:
    if not reachable(POSTGRES_ADMIN_URL):
        missing(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")


def require_rabbitmq() -> None:
    if not reachable(AMQP_URL):
        missing(f"RabbitMQ is not reachable at {AMQP_URL}")


def require_redis() -> None:
    if not reachable(REDIS_URL):
        missing(f"Redis is not reachable at {REDIS_URL}")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
