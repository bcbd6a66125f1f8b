"""CRLs: encoder, partitioned full and delta builders, updater, publisher."""
