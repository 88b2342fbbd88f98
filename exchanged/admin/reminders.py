"""Reminders the agreement calls for, recorded in the ledger and sent to the parties as notices.

- the notice to extend or end the agreement, due one month before it ends
  (Pasal 6 ayat (2));
- the berita acara and the monitoring and evaluation, due at least twice a
  year (Pasal 3 ayat (2) huruf d, Pasal 7): after each half-year without one;
- keys about to expire: the exchange's OpenPGP key, and each agency's pinned key.

Each reminder is raised once (its key is recorded in the ledger) and delivered
to every party concerned as a signed notice in ``/outbox/notices/``, a JSON
document inside an OpenPGP signed message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from exchanged.crypto.keys import Keyring
from exchanged.crypto.signing import sign_document
from exchanged.home import Home, atomic_write, make_private_dir
from exchanged.home.agencies import Agencies
from exchanged.home.drop import PlantedLink, deliver
from exchanged.ledger import Ledger, Query, format_ts
from exchanged.policy.model import Agreement, PolicySet

log = logging.getLogger("exchanged.admin.reminders")

NOTICES_FOLDER = "notices"
NOTICE_FORMAT = "exchanged/notice-v1"
EXCHANGE_KEY_WARNING_DAYS = 60
AGENCY_KEY_WARNING_DAYS = 30


@dataclass(frozen=True)
class Notice:
    kind: str  # renewal | minutes | evaluation | key_expiry
    key: str  # what makes it raised only once
    agreement: str | None
    parties: tuple[str, ...]
    due: date
    clause: str
    message: str
    #: the same in Indonesian (``pesan``: message)
    pesan: str


def _half_before(today: date) -> tuple[str, date, date] | None:
    """The half-year that ended most recently before ``today``."""
    if today.month <= 6:
        return f"{today.year - 1}-H2", date(today.year - 1, 7, 1), date(today.year - 1, 12, 31)
    return f"{today.year}-H1", date(today.year, 1, 1), date(today.year, 6, 30)


def due_notices(policy: PolicySet, today: date, reports: set[tuple[str, str, str]],
                key_expiries: list[tuple[str | None, str, date]]) -> list[Notice]:
    """Every reminder due on ``today`` (before de-duplication)."""
    out: list[Notice] = []
    for a in policy.agreements:
        out += _agreement_notices(a, today, reports)
    for agency, fingerprint, expires in key_expiries:
        warn = AGENCY_KEY_WARNING_DAYS if agency else EXCHANGE_KEY_WARNING_DAYS
        if today >= expires - timedelta(days=warn):
            whose = f"agency {agency}'s" if agency else "the exchange's"
            whose_id = f"instansi {agency}" if agency else "exchange"
            out.append(Notice(
                "key_expiry", f"key_expiry:{fingerprint}:{expires}", None,
                (agency,) if agency else (), expires, "Pasal 9 ayat (9)",
                f"The OpenPGP key {fingerprint} ({whose}) expires on {expires}: renew it and "
                "give the new key to the exchange before then.",
                f"Kunci OpenPGP {fingerprint} ({whose_id}) berakhir pada {expires}: perbarui "
                "dan serahkan kunci baru kepada exchange sebelum tanggal itu."))
    return out


def _agreement_notices(a: Agreement, today: date, reports: set[tuple[str, str, str]]
                       ) -> list[Notice]:
    out = []
    parties = tuple(p.id for p in a.parties)
    m = a.monitoring
    end = a.last_day
    notice_due = a.validity.end - timedelta(days=m.renewal_notice_days)
    if a.terminated_on is None and notice_due <= today <= a.validity.end:
        out.append(Notice(
            "renewal", f"renewal:{a.id}:{a.validity.end}", a.id, parties, notice_due,
            m.renewal_clause,
            f"Agreement {a.id} ends on {a.validity.end}. A party that wants to extend or end it "
            f"must say so in writing by {notice_due} ({m.renewal_clause}).",
            f"Perjanjian {a.id} berakhir pada {a.validity.end}. Pihak yang ingin memperpanjang "
            f"atau mengakhirinya memberitahukan secara tertulis paling lambat {notice_due} "
            f"({m.renewal_clause})."))
    half = _half_before(today)
    if half is not None:
        label, first, last = half
        if a.validity.start <= last and first <= end:
            for kind, report, clause, en, id_ in (
                ("minutes", "berita-acara", m.minutes_clause, "the berita acara of the data "
                 "matching", "berita acara hasil pemadanan data"),
                ("evaluation", "evaluasi", m.evaluations_clause, "the monitoring and "
                 "evaluation", "pemantauan dan evaluasi"),
            ):
                if (report, a.id, label) not in reports:
                    out.append(Notice(
                        kind, f"{kind}:{a.id}:{label}", a.id, parties, last + timedelta(days=1),
                        clause,
                        f"The half-year {label} of agreement {a.id} has ended without {en} "
                        f"({clause}): 'exchanged report {report} --agreement {a.id} --period "
                        f"{label}'.",
                        f"Semester {label} perjanjian {a.id} telah berakhir tanpa {id_} "
                        f"({clause})."))
    return out


def run_reminders(home: Home, ledger: Ledger, policy: PolicySet, now: datetime,
                  today: date) -> list[Notice]:
    """Raise the reminders due and not raised yet; returns them."""
    raised = {str(e.data.get("key")) for e in ledger.query(Query(kind="reminder."))}
    reports = {(str(e.data.get("report")), str(e.data.get("agreement")), str(e.data.get("period")))
               for e in ledger.query(Query(kind="report.generated"))}
    openpgp = Keyring(home.gnupg)
    expiries: list[tuple[str | None, str, date]] = []
    for k in openpgp.keys(secret=True):
        if k.expires:
            expiries.append((None, k.fingerprint, datetime.fromtimestamp(k.expires, UTC).date()))
    agencies = Agencies(home).all()
    for agency in agencies.values():
        info = openpgp.key(agency.gpg_fingerprint)
        if info is not None and info.expires:
            expiries.append((agency.id, info.fingerprint,
                             datetime.fromtimestamp(info.expires, UTC).date()))
    signer = openpgp.exchange_fingerprint()
    made = []
    for notice in due_notices(policy, today, reports, expiries):
        if notice.key in raised:
            continue
        delivered = deliver_notice(home, signer, notice, now, [p for p in notice.parties
                                                         if p in agencies])
        ledger.append(f"reminder.{notice.kind}", actor="exchange", agreement=notice.agreement,
                      key=notice.key, due=notice.due.isoformat(), clause=notice.clause,
                      delivered_to=delivered)
        log.info("reminder %s raised (%s)", notice.kind, notice.key)
        made.append(notice)
    return made


def deliver_notice(home: Home, signer: str, notice: Notice, now: datetime, parties: list[str]
                   ) -> list[str]:
    """Sign ``notice`` with ``signer``, keep a copy in ``notices/`` and put one in each
    party's ``/outbox/notices/``; returns the parties it reached."""
    body = json.dumps({
        "format": NOTICE_FORMAT, "kind": notice.kind, "agreement": notice.agreement,
        "due": notice.due.isoformat(), "clause": notice.clause, "message": notice.message,
        "pesan": notice.pesan, "issued": format_ts(now),
    }, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    signed = sign_document(home.gnupg, signer, body)
    name = f"notice-{notice.kind}-{notice.key.split(':', 1)[1].replace(':', '-')}.json.asc"
    make_private_dir(home.root / "notices")
    atomic_write(home.root / "notices" / name, signed)
    reached = []
    for party in parties:
        try:
            deliver(home, party, NOTICES_FOLDER, name, signed)
        except PlantedLink as e:  # the notice stays in notices/; the entry says who got it
            log.error("notice not delivered to %s: %s", party, e, extra={"agency": party})
            continue
        reached.append(party)
    return reached
