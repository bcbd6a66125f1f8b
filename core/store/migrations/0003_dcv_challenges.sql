-- Domain validation challenges hanko performs (dns-change, website-change, email).
CREATE TABLE dcv_challenges (k bytea PRIMARY KEY, v bytea NOT NULL);
