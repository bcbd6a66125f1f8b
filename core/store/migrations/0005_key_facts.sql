-- kind: expand
-- Certificates gain their key's type (ecdsa-p256, rsa-2048, ...) and the SHA-256 of
-- their SubjectPublicKeyInfo, for "every certificate with this key" and "every RSA-2048
-- certificate" (a weak-key or compromised-key incident). Online: hanko of schema 4
-- keeps serving (it leaves both empty on what it issues); this step fills those of
-- the rows already there, and step 6 fills the rest once no hanko of schema 4 is left.
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS key_type text,
    ADD COLUMN IF NOT EXISTS spki_sha256 bytea;
-- outside a transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_key_type ON certificates (key_type, not_before);
CREATE INDEX CONCURRENTLY IF NOT EXISTS certificates_spki ON certificates (spki_sha256);
