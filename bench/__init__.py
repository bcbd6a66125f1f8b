"""Benchmarks: load scripts for servers and components (run through `hanko bench ...`)
and pytest-benchmark micro benchmarks (`pytest bench/`). Results are ratios against a
baseline measured in the same run: absolute figures move with the machine."""
