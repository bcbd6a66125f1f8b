"""Opens a store (a path or a PostgreSQL DSN) in its own process and prints what it
sees for a serial."""

import sys

from tests.stores import reopen

store = reopen(sys.argv[1])
with store.read() as txn:
    rec = txn.get_cert(bytes.fromhex(sys.argv[2]))
    print("missing" if rec is None else f"{rec.status.name} {','.join(rec.names)}")
    print(txn.counter("audit"))
store.close()
