"""Opens a store read-only in its own process and prints what it sees for a serial."""

import sys
from pathlib import Path

from core.store import Store

store = Store(Path(sys.argv[1]), readonly=True)
with store.read() as txn:
    rec = txn.get_cert(bytes.fromhex(sys.argv[2]))
    print("missing" if rec is None else f"{rec.status.name} {','.join(rec.names)}")
    print(txn.counter("audit"))
store.close()
