"""Reference data and matchers: register snapshots under keyed identifiers, the fuzzy index."""
