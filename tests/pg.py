"""PostgreSQL for tests: a throwaway database per test module, a schema per test.

The server comes from MONITOR_TEST_POSTGRES_URL (default: the local one, trust
auth). When it cannot be reached the PostgreSQL tests are skipped with the
reason, unless MONITOR_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from monitor.redaction import redact

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("MONITOR_TEST_POSTGRES_URL") or DEFAULT_URL


def required() -> bool:
    return os.environ.get("MONITOR_REQUIRE_POSTGRES") == "1"


def unreachable_reason(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed: pip install 'news-monitor[test]'"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        parts = urlsplit(url)
        return (f"PostgreSQL not reachable at {parts.hostname}:{parts.port or 5432}: "
                f"set MONITOR_TEST_POSTGRES_URL")
    return None


def require_server() -> str:
    """The server URL, or skip (fail when MONITOR_REQUIRE_POSTGRES=1) the test."""
    url = server_url()
    reason = unreachable_reason(url)
    if reason is not None:
        if required():
            pytest.fail(reason + " (MONITOR_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    return url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit(parts._replace(query=query))


def admin_execute(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture(scope="module")
def pg_database():
    """A fresh database for this test module (dropped after it); its URL."""
    server = require_server()
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin_execute(server, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server, name)
    finally:
        admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database):
    """A fresh, empty schema in the module's database: a URL whose search_path is it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_execute(pg_database, f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(pg_database, schema)
    finally:
        admin_execute(pg_database, f'DROP SCHEMA "{schema}" CASCADE')


__all__ = ["pg_database", "pg_url", "require_server", "unreachable_reason", "redact"]
