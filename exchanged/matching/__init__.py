"""Reference data and matchers: register snapshots keyed by hashed identifiers (bottom floor: imports nothing of the rest)."""
