"""Test support, never shipped: synthetic data, the demo, the daemon as a child, agency desks."""
