"""The store a configuration names: the LMDB environment at `[store] path`, or the
PostgreSQL database at `[store] dsn` (its password read from the file or environment
variable `[store] password` names), and that database's migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from core.base.errors import StoreError
from core.config import Config, read_secret
from core.config.settings import StoreConfig
from core.store.backend import Store
from core.store.environment import LmdbStore


class Located(Protocol):
    """Where relative paths (secret files) are resolved: a Config, or a folder."""

    def path(self, value: str) -> Path: ...


def open_store(cfg: Config, *, readonly: bool = False, application_name: str = "hanko") -> Store:
    return open_configured(cfg.store, cfg, readonly=readonly, application_name=application_name)


def open_configured(
    st: StoreConfig, cfg: Located, *, readonly: bool = False, application_name: str = "hanko"
) -> Store:
    if st.backend == "postgresql":
        # Imported here: an LMDB-only process (the OCSP responders) never loads psycopg.
        from core.store.pg_store import PgStore

        return PgStore(
            st.dsn,
            password=read_secret(cfg, st.password) if st.password is not None else None,
            readonly=readonly,
            pool_size=st.pool_size,
            connect_timeout=st.connect_timeout.seconds,
            statement_timeout=st.statement_timeout.seconds,
            synchronous_commit=st.synchronous_commit,
            application_name=application_name,
        )
    return LmdbStore(
        cfg.path(st.path),
        map_size=st.map_size.bytes,
        max_map_size=st.max_map_size.bytes,
        readonly=readonly,
    )


def _pg_connect(st: StoreConfig, cfg: Located, *, admin: bool) -> Any:
    """A direct connection for migrations: the admin role's when configured."""
    import psycopg

    from core.store.pg_kv import first_line
    from core.store.pg_store import connection_kwargs

    dsn, ref = (
        (st.admin_dsn, st.admin_password) if admin and st.admin_dsn else (st.dsn, st.password)
    )
    kwargs = connection_kwargs(
        password=read_secret(cfg, ref) if ref is not None else None,
        connect_timeout=st.connect_timeout.seconds,
        statement_timeout=0,  # a migration takes what it takes
        synchronous_commit=st.synchronous_commit,
        application_name="hanko-migrate",
    )
    try:
        return psycopg.connect(dsn, autocommit=True, **kwargs)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the PostgreSQL store: {first_line(exc)}") from exc


def migrate(
    st: StoreConfig, cfg: Located, *, to: int | None = None, plan: bool = False
) -> tuple[list[int], int, list[dict[str, Any]]]:
    """Bring the configured PostgreSQL store to this hanko's schema (or step `to`):
    the steps applied now, the version it is at, and (with `plan`, nothing applied)
    what each pending step would do. A step that must wait for older hanko to
    disconnect raises StepWaits after the ones before it."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from core.store import pg_schema
    from core.store.pg_kv import first_line

    if st.backend != "postgresql":
        raise StoreError("store.backend is lmdb: its schema needs no migration")
    user = conninfo_to_dict(st.dsn).get("user")
    runtime = str(user) if user else None
    with _pg_connect(st, cfg, admin=True) as conn:
        try:
            if plan:
                return [], pg_schema.applied(conn), pg_schema.plan(conn, to=to)
            done = pg_schema.migrate(conn, runtime_role=runtime, to=to)
            return done, pg_schema.applied(conn), []
        except psycopg.Error as exc:
            raise StoreError(
                f"the migration failed, nothing of it kept: {first_line(exc)}"
            ) from exc
