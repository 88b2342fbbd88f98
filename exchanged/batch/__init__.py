"""A batch's way through the exchange: the spool, its stages, its outcome, its delivery."""
