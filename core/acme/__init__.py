"""ACME (RFC 8555): the protocol's pure parts (JWS, nonces, problems, messages, order
states) and the registration authority that ties accounts, orders and authorizations
to hanko's organizations, licences and issuance engine."""
