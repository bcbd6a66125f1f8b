"""OCSP: request/response codec, pre-signing refresher, responder server (issue 5)."""
