-- kind: offline
-- Typed tables for what operators and auditors query: certificates, organizations,
-- domain validations, the audit log, the ledger and ACME orders, a column per field.
-- The rows of the key-value tables they replace are converted (by hanko, which reads
-- their records), then those tables and the five index tables PostgreSQL now keeps
-- (expiry, account_certs, domain_orgs, acme_account_orders, ledger_index) are dropped.
-- Offline: stop every hanko of schema 3 first; this hanko does not run on schema 3,
-- nor hanko 3 on this one.
--
-- `k` is hanko's key of a row (big-endian numbers, padded serials): cursors walk a
-- table in its order. Times are timestamptz; hanko keeps whole seconds (the audit log,
-- microseconds).

-- Conversions the typed tables' statements and index expressions use. Declared
-- IMMUTABLE: an epoch and UTF-8 bytes do not depend on the session's time zone or
-- encoding, which is what makes them usable in index expressions.
-- The key-value ledger makes way for the typed one (its rows are converted after this
-- file runs, then it and the other replaced tables are dropped).
ALTER TABLE ledger RENAME TO ledger_kv;

CREATE FUNCTION hanko_epoch(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT
    PARALLEL SAFE AS $$ SELECT extract(epoch FROM t)::bigint $$;
CREATE FUNCTION hanko_epoch_us(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT
    PARALLEL SAFE AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;
CREATE FUNCTION hanko_from_us(us bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT
    PARALLEL SAFE AS $$ SELECT timestamptz 'epoch' + us * interval '1 microsecond' $$;
CREATE FUNCTION hanko_utf8(s text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
    PARALLEL SAFE AS $$ SELECT convert_to(s, 'UTF8') $$;

CREATE TABLE certificates (
    k bytea PRIMARY KEY,
    serial bytea NOT NULL UNIQUE,
    serial_hex text GENERATED ALWAYS AS (encode(serial, 'hex')) STORED,
    issuer bytea NOT NULL,  -- the issuing CA's key identifier (SHA-1 of its key)
    status text NOT NULL CHECK (status IN ('good', 'revoked')),
    not_before timestamptz NOT NULL,
    not_after timestamptz NOT NULL,
    names text[] NOT NULL,
    organization text NOT NULL,
    profile text NOT NULL,
    partition integer NOT NULL,  -- its CRL partition
    der bytea NOT NULL,  -- the certificate (the precertificate while precertificate_only)
    revoked_at timestamptz,
    reason smallint,  -- CRLReason (RFC 5280 5.3.1)
    first_issued timestamptz,
    account text NOT NULL,
    license text NOT NULL,
    charged bigint NOT NULL,
    lot bigint NOT NULL,
    released boolean NOT NULL,
    reissues integer NOT NULL,
    precertificate_only boolean NOT NULL,
    precertificate bytea NOT NULL,
    coupon bytea NOT NULL,
    superseded_by bytea NOT NULL,
    names_charged integer NOT NULL
);

CREATE TABLE organizations (
    k bytea PRIMARY KEY,
    id text NOT NULL UNIQUE,
    level text NOT NULL,  -- ov or ev
    name text NOT NULL,
    country text NOT NULL,
    state text,
    locality text,
    validated_at timestamptz NOT NULL,
    jurisdiction_country text,
    business_category text,
    registration_number text,
    account text NOT NULL,
    parent text NOT NULL
);

CREATE TABLE domain_validations (
    k bytea PRIMARY KEY,
    organization text NOT NULL,
    domain text NOT NULL,
    validated_at timestamptz NOT NULL,
    method text NOT NULL,  -- dns-change, website-change, email, dns-01, http-01, ...
    attested_by text NOT NULL,  -- the operator who asserted it; '' when hanko performed it
    evidence text NOT NULL,  -- what was seen, where and when (JSON)
    challenge text NOT NULL,
    UNIQUE (organization, domain)
);

CREATE TABLE audit_log (
    k bytea PRIMARY KEY,
    seq bigint NOT NULL UNIQUE,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    detail jsonb NOT NULL
);

CREATE TABLE ledger (
    k bytea PRIMARY KEY,
    seq bigint NOT NULL UNIQUE,
    at timestamptz NOT NULL,
    account text NOT NULL,
    license text NOT NULL,
    movement text NOT NULL,
    amount bigint NOT NULL,  -- signed, in the licence's unit
    actor text NOT NULL,
    lot bigint NOT NULL,
    serial text NOT NULL,
    item text NOT NULL,
    term_end timestamptz,
    quantity bigint NOT NULL,
    note text NOT NULL
);

CREATE TABLE orders (
    k bytea PRIMARY KEY,
    id text NOT NULL UNIQUE,
    acme_account text NOT NULL,
    names text[] NOT NULL,
    authz text[] NOT NULL,
    status text NOT NULL,
    expires timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    serial bytea NOT NULL,
    replaces text NOT NULL,
    error text NOT NULL,
    profile text NOT NULL
);

-- The index tables hanko kept by hand, kept by PostgreSQL (core/store/pg_typed.py
-- selects their rows with these same expressions).
CREATE INDEX certificates_expiry ON certificates ((int8send(hanko_epoch(not_after)) || k))
    INCLUDE (issuer);
CREATE INDEX certificates_account ON certificates
    ((hanko_utf8(account) || '\x00'::bytea || int8send(hanko_epoch(not_after)) || k))
    WHERE account <> '' AND NOT precertificate_only;
CREATE INDEX domain_validations_domain ON domain_validations
    ((hanko_utf8(domain) || '\x00'::bytea || hanko_utf8(organization)));
CREATE INDEX orders_account ON orders
    ((hanko_utf8(acme_account) || '\x00'::bytea || int8send(hanko_epoch(created_at))
      || hanko_utf8(id)));
CREATE INDEX ledger_license ON ledger (('\x4c'::bytea || hanko_utf8(license) || '\x00'::bytea || k));
CREATE INDEX ledger_account ON ledger (('\x41'::bytea || hanko_utf8(account) || '\x00'::bytea || k));

-- What incident response and audits ask: by organization, account, profile, issuer,
-- issuance date, expiry; names by containment (GIN).
CREATE INDEX certificates_organization ON certificates (organization, not_before);
CREATE INDEX certificates_account_issued ON certificates (account, not_before);
CREATE INDEX certificates_profile ON certificates (profile, not_before);
CREATE INDEX certificates_issuer ON certificates (issuer, not_before);
CREATE INDEX certificates_not_before ON certificates (not_before);
CREATE INDEX certificates_names ON certificates USING gin (names);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX ledger_seq_license ON ledger (license, seq);

-- The audit log and the ledger only grow (the role hanko runs as may only INSERT and
-- SELECT them, and these triggers refuse the rest to any role).
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION hanko_append_only();
