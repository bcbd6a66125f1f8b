"""Where a responder process's answers come from: the CA host's LMDB store and files
(`hanko serve`), or a responder host's copy of what the CA replicates to Redis
(`hanko responder`; ocsp/status/copy_source.py). Both give the
responder the same things: a view of the pre-signed responses, the issuing CA, the
CertID hashes and paths served, the CRL files, the CA certificates and readiness.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509

from core.store import LmdbStore, Store
from core.store.backend import StatusView
from ocsp.status.ca_files import CaFiles
from ocsp.status.crl_files import CrlFile, PublishedCrls
from ocsp.status.paths import StatusPaths
from ocsp.status.settings import ServerSettings

# `hanko responder` hands the Redis password to its copier here: never on its command
# line.
PASSWORD_ENV = "HANKO_RESPONDER_REDIS_PASSWORD"  # noqa: S105 - a variable's name
# And `hanko serve` on a PostgreSQL store hands its processes the store's password here.
STORE_PASSWORD_ENV = "HANKO_RESPONDER_STORE_PASSWORD"  # noqa: S105 - a variable's name
# A status lookup on PostgreSQL that takes longer fails (the answer is tryLater).
PG_LOOKUP_TIMEOUT = 2.0


class Source:
    """What ResponderState answers from (no I/O of its own beyond the view's)."""

    __slots__ = (
        "ca_file",
        "close",
        "content_type",
        "crl",
        "hashes",
        "issuers",
        "paths",
        "ready",
        "stale",
        "view",
    )

    def __init__(
        self,
        *,
        view: Any,
        issuers: list[x509.Certificate],
        hashes: list[int],
        paths: StatusPaths,
        crl: Callable[[str], CrlFile | None] | None,
        ca_file: Callable[[bytes], CrlFile | None],
        content_type: Callable[[bytes], bytes],
        ready: Callable[[], tuple[bool, bytes]],
        close: Callable[[], None],
        stale: Callable[[], bool] = lambda: False,
    ) -> None:
        self.view = view
        self.issuers = issuers  # every issuing CA answered for
        self.hashes = hashes
        self.paths = paths
        self.crl = crl
        self.ca_file = ca_file
        self.content_type = content_type
        self.ready = ready
        self.close = close
        # True once what the process was started with no longer holds (a new CA
        # profile on a responder host): it exits, to be started again.
        self.stale = stale


def lmdb_source(settings: ServerSettings, store: Store | None = None) -> Source:
    """The CA host's store, named by `settings` (LMDB at store_path, opened read-only,
    or PostgreSQL at store_dsn), or `store` (already open in this process: then closing
    the source leaves it open)."""
    view: StatusView
    if store is not None:
        view, close_store, kind = store.ocsp_view(), None, store.backend
    elif settings.store_dsn:
        view, close_store, kind = _pg_view(settings), None, "postgresql"
    else:
        opened = LmdbStore(Path(settings.store_path), map_size=settings.map_size, readonly=True)
        view, close_store, kind = opened.ocsp_view(), opened.close, "lmdb"
    crls = (
        PublishedCrls(Path(settings.crl_dir), max_age=settings.crl_max_age)
        if settings.crl_dir
        else None
    )
    files = CaFiles(settings.paths.ca_files)
    ready_body = b'{"ready": true, "source": "%s"}\n' % kind.encode()

    def close() -> None:
        view.close()
        if close_store is not None:
            close_store()

    return Source(
        view=view,
        issuers=[
            x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in settings.issuer_certs
        ],
        hashes=settings.hashes,
        paths=settings.paths,
        crl=crls.get if crls is not None else None,
        ca_file=files.get,
        content_type=files.content_type,
        # The store is this host's own: a responder that runs answers from it.
        ready=lambda: (True, ready_body),
        close=close,
    )


def _pg_view(settings: ServerSettings) -> StatusView:
    import psycopg

    from core.store.pg_store import connection_kwargs
    from core.store.pg_view import PgOcspView

    kwargs = connection_kwargs(
        password=os.environ.get(STORE_PASSWORD_ENV) or None,
        connect_timeout=PG_LOOKUP_TIMEOUT,
        statement_timeout=PG_LOOKUP_TIMEOUT,
        synchronous_commit="on",
        application_name="hanko-ocsp",
    )
    return PgOcspView(
        lambda: psycopg.connect(settings.store_dsn, autocommit=True, **kwargs), time.monotonic
    )
