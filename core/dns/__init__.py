"""The CA's DNS: one resolver client for every lookup (ACME, CAA, domain validation,
the outbound address policy's name resolution)."""
