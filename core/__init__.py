"""hanko core: domain model, configuration, the LMDB status store, wiring and the CLI."""
