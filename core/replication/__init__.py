"""Status replication: what hanko commits about certificate status (pre-signed OCSP
responses, their envelopes, CRL files) written to Redis for responder hosts that hold
no store and no HSM."""
