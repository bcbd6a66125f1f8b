"""The status host: the HTTP server that answers OCSP and serves CRLs and CA
certificates (uvloop processes on one port), its sans-IO connection, the sources it
answers from (the LMDB store, PostgreSQL, or a Redis replica's copy), and their
supervision. The OCSP protocol itself (codec, answers, pre-signing) is the package
above."""
