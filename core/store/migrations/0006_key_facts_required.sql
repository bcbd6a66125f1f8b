-- kind: contract
-- Every certificate has its key's type and SPKI hash: the rows hanko of schema 4
-- wrote while the upgrade rolled are filled, then both columns become NOT NULL
-- (checked by a constraint validated without blocking writes first, so SET NOT NULL
-- needs no scan under its lock). Needs every hanko connected to be of schema 5 or later.
ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_key_facts;
ALTER TABLE certificates ADD CONSTRAINT certificates_key_facts
    CHECK (key_type IS NOT NULL AND spki_sha256 IS NOT NULL) NOT VALID;
-- outside a transaction
ALTER TABLE certificates VALIDATE CONSTRAINT certificates_key_facts;
ALTER TABLE certificates ALTER COLUMN key_type SET NOT NULL, ALTER COLUMN spki_sha256 SET NOT NULL;
ALTER TABLE certificates DROP CONSTRAINT certificates_key_facts;
