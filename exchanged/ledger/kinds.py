"""Every kind of ledger entry, and what it records. The ledger refuses any other kind.

docs/ledger.md documents each of them (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping

KINDS: Mapping[str, str] = {
    # the ledger and the exchange
    "ledger.created": "the ledger was created (its id, the exchange's name)",
    "ledger.checkpoint": "a checkpoint was signed: the tree head (size, Merkle root) and the "
    "agencies it was delivered to",
    "ledger.cosigned": "an agency co-signed a checkpoint as a witness (tlog-cosignature): the "
    "checkpoint's size and root, the witness key's id, the cosignature's time and the "
    "cosignature itself; the checkpoint is served with it from then on",
    "ledger.cosignature_refused": "an agency's cosignature of a checkpoint was refused (reason "
    "code, the checkpoint's size); nothing else was recorded",
    "ledger.witness_key": "an agency's witness key (Ed25519, for its cosignatures) was "
    "registered: on first use by its first cosignature, or by an administrator (the vkey, "
    "the one it replaced)",
    "ledger.timestamped": "a checkpoint got an RFC 3161 timestamp from the configured "
    "timestamping authority (size, the token's time and SHA-256, the authority's URL)",
    "ledger.timestamp_failed": "the timestamping authority could not timestamp a checkpoint "
    "(why, when it is tried again); the exchange goes on",
    "exchange.initialised": "a home was created: the exchange's key and host key fingerprints, "
    "the policy set's hash",
    "exchange.started": "the daemon started (version, pid, the policy set's hash; the set is "
    "archived for replay)",
    "exchange.stopped": "the daemon stopped cleanly",
    "exchange.unavailable": "the exchange found it cannot work (a full disk, an unwritable "
    "ledger): intake stopped (since when, why); written as soon as the ledger takes it",
    "exchange.available": "the exchange can work again after a failure to write (intake "
    "resumed; since when it was stopped)",
    "work.wiped": "stray plaintext found in the work area at start-up was removed (file count)",
    # administration
    "agency.added": "an agency was registered: pinned OpenPGP fingerprint, SSH key fingerprint, "
    "its flows",
    "agency.updated": "an agency's keys changed: SSH login key replaced or added, pinned "
    "OpenPGP key changed (old and new fingerprints) or refreshed (revoked, expired)",
    "exchange.key_rotated": "the exchange's OpenPGP key (old and new fingerprints, the agencies "
    "notified) or SSH host key (old and new host key fingerprints) was replaced",
    "exchange.register_key_rotated": "the register key was replaced (a fingerprint of the "
    "old and of the new key: a keyed hash, never the key); the datasets whose snapshots went "
    "with the old key, to be loaded again",
    "policy.extended": "an extension addendum was recorded (agreement, number, new end, reference)",
    "policy.terminated": "a termination addendum was recorded (agreement, number, date, "
    "reference, clause)",
    "agreement.force_majeure": "a party's force majeure notice was recorded (when it occurred, "
    "when notified, the deadline, whether late; Pasal 10)",
    "policy.reloaded": "the daemon reloaded its policies (new policy hash)",
    "policy.reload_failed": "a reload was refused because a policy is invalid; the previous one "
    "stays",
    # the front door
    "login.succeeded": "an agency logged in over SFTP (remote address); written by earlier "
    "versions only: a session is now one session.ended",
    "login.failed": "connections ended without a successful login: at most 3 entries a minute "
    "per address written at once (remote address, attempts, connections 1; the agency if the "
    "user name is one, else only a keyed hash of the name), the rest aggregated into one entry "
    "per address a minute (aggregated, connections, attempts, agencies and keyed hashes of the "
    "names tried; addresses instead of remote beyond the exchange's budget of 60 a minute)",
    "login.banned": "an address (an IPv6 /64) was banned after repeated failed logins or "
    "connections held silent (the address, its score, the ban's length in seconds, the "
    "how-manieth ban of it)",
    "session.ended": "an agency's SFTP session ended: one entry for the whole session (session "
    "id, remote address, started, seconds, ended_by: client, idle, key_changed, stopping, or "
    "cut_off when a daemon killed mid-session left it open; downloads, downloaded_bytes, "
    "removals, and per outcome its flow, batch, keyed hash of the name, downloads, removed)",
    "session.activity": "a long session's activity so far, once it touched 100 outcomes (the "
    "same fields as session.ended, part: which list this is); session.ended follows",
    "login.refused": "an agency's login was refused before its key was accepted: from a "
    "network outside its allow_from (the address), or a PROXY header from an address that is "
    "no trusted proxy (no agency then); the connection also scores for the defender",
    "upload.interrupted": "an upload that did not complete (dropped connection, over its limit, "
    "daemon stopped) was discarded, never processed; recorded before its file is removed",
    # a batch's life
    "batch.received": "an upload was closed normally and taken out of the agency's reach "
    "(SHA-256, size, whether its name is valid, the batch it replays)",
    "batch.resumed": "at start-up, an unfinished batch was queued again (its stage)",
    "batch.opened": "the batch decrypted and its signature verified (signer fingerprint, "
    "plaintext size)",
    "batch.admitted": "the policy allowed the batch (decision, rules, clauses, policy hash, "
    "disclosed fields)",
    "batch.rejected": "the batch was refused (reason codes; for a policy refusal also the "
    "rules, clauses and policy hash)",
    "batch.failed": "an internal error stopped the batch; it is answered with EXCHANGE_ERROR",
    "batch.processed": "the flow answered (row counts by status, reference snapshot, the sealed "
    "outcome's SHA-256; on keyed tokens, matching and the token key's fingerprint; a "
    "nik-lookup flow's invalid rows by the code of their alasan)",
    "outcome.sealed": "a rejection was signed and encrypted for the agency (SHA-256)",
    "batch.answered": "the outcome was placed in the agency's outbox (name, SHA-256)",
    "batch.undeliverable": "the outcome was not placed in the agency's outbox: a folder of its "
    "path is a link or not a folder (planted by another process); the batch waits to be "
    "delivered",
    "batch.retrying": "the batch must wait (its outcome cannot be sealed or delivered now, no "
    "room for it on the disk): which try this was, at which stage, why",
    "batch.shunted": "after its last try the batch was set aside for an administrator (stage, "
    "tries, why); 'exchanged batch requeue' puts it back",
    "batch.requeued": "an administrator put a shunted batch back into the pipeline",
    "outcome.downloaded": "the agency downloaded an outcome completely; written by earlier "
    "versions only: downloads are now counted in the session's session.ended",
    "outcome.removed": "the agency removed an outcome from its outbox (size, a keyed hash of "
    "the name; also counted in the session's entry)",
    # retention and reminders
    "retention.purged": "retention removed what may no longer be kept: which artefact "
    "(encrypted uploads, outcomes, everything of an ended agreement, held uploads, stray "
    "plaintext), of which agreement, how many files and bytes, and how many rows of the "
    "exchange's own tables (an ended agreement's counted comparisons)",
    "retention.checked": "a retention run finished (how many purges, files and bytes; also "
    "when nothing was due)",
    "reminder.renewal": "the notice to extend or end an agreement is due (Pasal 6 ayat (2)); "
    "a signed notice went to the parties",
    "reminder.minutes": "a half-year ended without a berita acara (Pasal 3 ayat (2) huruf d)",
    "reminder.evaluation": "a half-year ended without a monitoring and evaluation (Pasal 7)",
    "reminder.key_expiry": "an OpenPGP key (the exchange's or an agency's) expires soon",
    # event hooks
    "hook.delivered": "an event hook was told of an event (hook, url or command, the event, "
    "the entry that raised it, tries, the answer: 'HTTP 204', 'exit 0')",
    "hook.failed": "an event hook could not be told of an event after its last try (the same "
    "fields; the hook went on to the next event)",
    # reports
    "report.generated": "a periodic report was made (berita acara or evaluasi: agreement, "
    "period, whether it had ended, the checkpoint's size, the formats written and each one's "
    "SHA-256, the version of exchanged that made it)",
    # reference data
    "dataset.replaced": "a reference snapshot (the ASN register) became current (rows, the one "
    "it replaced)",
    "dataset.cleaned": "at start-up, snapshots that no dataset uses (a load cut off) were removed",
}
