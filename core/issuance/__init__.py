"""Issuance: CSR intake, name and key rules, validity schedule, certificate profiles
(all pure), and the engine that checks, lints, signs and commits (the edge)."""
