"""The store a configuration names: the LMDB environment at `[store] path`, or the
PostgreSQL database at `[store] dsn` (its password read from the file or environment
variable `[store] password` names)."""

from __future__ import annotations

from core.config import Config, read_secret
from core.store.backend import Store
from core.store.environment import LmdbStore


def open_store(cfg: Config, *, readonly: bool = False, application_name: str = "hanko") -> Store:
    st = cfg.store
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
