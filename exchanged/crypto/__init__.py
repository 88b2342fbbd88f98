"""Every call of ``gpg``: the exchange's keys, opening batches, sealing answers, signed papers."""
