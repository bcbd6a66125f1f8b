-- The store's tables: one per store table of core/store/keys.py, with the same keys
-- (ordered bytes: bytea sorts as LMDB does) and the same records (core/store/records.py),
-- so one set of domain modules serves both back ends and `hanko store copy` moves rows
-- unchanged.

CREATE TABLE meta (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE certs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE expiry (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE revocations (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE counters (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE audit (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE orgs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE domains (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE blocked_keys (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE idempotency (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE ocsp (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE ocsp_due (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE crl_entries (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE crl_log (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE crl_expiry (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE crl_state (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE accounts (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE licenses (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE ledger (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE ledger_index (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE license_live (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE account_certs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE api_keys (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE api_key_secrets (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_eab (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_accounts (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_keys (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_orders (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_authz (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE domain_orgs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE acme_account_orders (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE webhooks (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE outbox (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE outbox_due (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE notify_marks (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE replication (k bytea PRIMARY KEY, v bytea NOT NULL);

-- The audit log and the licence ledger only grow. The role hanko runs as is granted
-- INSERT and SELECT on them and nothing else (`hanko store migrate`); these triggers
-- refuse the rest even to a role that holds the privileges.
CREATE FUNCTION hanko_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % table is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION hanko_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION hanko_append_only();
