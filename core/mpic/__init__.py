"""Multi-perspective issuance corroboration: remote perspectives that confirm the
primary's domain validations and CAA decisions (BR 3.2.2.9)."""
