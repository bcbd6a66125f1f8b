-- Coupons with numbers, and renewals scheduled for when their issue window opens.
CREATE TABLE coupons (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE license_coupons (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE renewals (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE renewals_due (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE renewals_of (k bytea PRIMARY KEY, v bytea NOT NULL);
