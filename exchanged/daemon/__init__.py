"""The running daemon: start-up order, signals, scheduled jobs, metrics, logs, its front door."""
