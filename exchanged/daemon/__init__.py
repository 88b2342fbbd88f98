"""The running daemon: start-up order, signals, scheduled jobs, metrics, logs, the front door's wiring."""
