"""The service as a whole: migrations on an empty database, health, mounting into another
app, and real HTTP under uvicorn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import inspect, text

from server.embedded.redis_server import free_port
from services.auth.app import create_app
from services.auth.context import build_auth
from services.auth.db import make_engine, upgrade_database
from services.auth.models import Base
from services.auth.routes import build_router
from services.auth.settings import AuthSettings
from tests.services.auth.support import PASSWORD, bearer, connect, register, register_and_login
from tests.support.live import serve_in_thread


def test_migrations_build_the_schema_of_the_models_on_an_empty_database(
        database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)  # at every start: a no-op the second time
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == {
            "users", "refresh_tokens", "role_grants", "api_keys", "mcp_credentials",
            "alembic_version_auth"}
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT version_num FROM alembic_version_auth")) \
                == "0004"
            # What the migrations made is what the models describe: nothing to autogenerate.
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "version_table": "alembic_version_auth"})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/auth/healthz")).json() == {"status": "ok"}
    assert (await client.get("/auth/readyz")).json() == {"status": "ready", "database": "ok"}


async def test_not_ready_when_the_database_is_unreachable(tmp_path: Path) -> None:
    dead = f"postgresql+psycopg://nobody:nothing@127.0.0.1:{free_port()}/auth"
    ctx = build_auth(AuthSettings(database_url=dead, keys_dir=tmp_path / "keys"))
    app = FastAPI()
    app.include_router(build_router(ctx))
    async with connect(app) as client:
        alive = await client.get("/auth/healthz")
        ready = await client.get("/auth/readyz")
    ctx.close()
    assert alive.status_code == 200
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"


async def test_the_router_mounts_into_another_app(auth_settings: AuthSettings) -> None:
    ctx = build_auth(auth_settings)
    ctx.start()
    host = FastAPI(title="someone else's app")

    @host.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    host.include_router(build_router(ctx))
    try:
        async with connect(host) as client:
            tokens = await register_and_login(client)
            me = await client.get("/auth/me", headers=bearer(tokens))
            assert me.json()["username"] == "ada"
            assert (await client.get("/hello")).json() == {"hello": "world"}
            schema = (await client.get("/openapi.json")).json()
        login_body = schema["paths"]["/auth/login"]["post"]["requestBody"]["content"]
        assert {"application/json", "application/x-www-form-urlencoded"} <= login_body.keys()
        assert schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"][
            "password"]["tokenUrl"] == "/auth/login"
    finally:
        await ctx.aclose()


async def test_over_real_http_under_uvicorn(auth_settings: AuthSettings) -> None:
    with serve_in_thread(create_app(auth_settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await register(client, "grace")
            form = await client.post("/auth/login", data={"username": "grace",
                                                          "password": PASSWORD})
            assert form.status_code == 200
            tokens = form.json()
            me = await client.get("/auth/me", headers=bearer(tokens))
            renewed = await client.post("/auth/refresh",
                                        json={"refresh_token": tokens["refresh_token"]})
            ready = await client.get("/auth/readyz")
            docs = await client.get("/docs")
    assert me.json()["username"] == "grace"
    assert renewed.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok"}
    assert docs.status_code == 200


def test_importing_the_service_has_no_side_effects(tmp_path: Path) -> None:
    """No engine, key, hash or database is made at import: only `create_app` makes them."""
    code = ("import services.auth.app, services.auth.deps, services.auth.keys, "
            "services.auth.migrations, services.tokens; "
            "from services.auth import security; "
            "assert security.dummy_hash.cache_info().currsize == 0")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                   env={"PYTHONPATH": str(Path(__file__).parents[3])})
    assert list(tmp_path.iterdir()) == []
