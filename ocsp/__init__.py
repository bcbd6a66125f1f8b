"""OCSP: request/response codec, pre-signing refresher, responder server."""
