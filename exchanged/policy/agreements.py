"""An agreement as signed: its file read into an :class:`~exchanged.policy.model.Agreement`.

The file ``<agreement>.yaml`` (``format: exchanged/agreement-v1``) is checked
like against a schema: every key known, every type checked, every party and
purpose a flow names resolved, every date possible and in order. Its flows are
read by :mod:`exchanged.policy.flows`; its addenda are applied afterwards
(:mod:`exchanged.policy.addenda`).
"""

from __future__ import annotations

import re

from exchanged.policy.flows import check_flow_references, parse_flow
from exchanged.policy.model import (
    Agreement,
    Confidentiality,
    Contact,
    Monitoring,
    Party,
    Purpose,
    Retention,
    Validity,
)
from exchanged.policy.schema import Path_, Reader, Source

AGREEMENT_FORMAT = "exchanged/agreement-v1"
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
AGREEMENT_KEYS = ("format", "agreement", "parties", "confidentiality", "retention", "monitoring",
                  "flows")
AGREEMENT_BODY_KEYS = ("id", "title", "numbers", "signed", "validity", "changes", "purposes")
PARTY_KEYS = ("role", "name", "address", "signatory", "contact")
CONTACT_KEYS = ("unit", "address", "phone", "email", "clause")
CONFIDENTIALITY_KEYS = (
    "answers_only_to_requester", "answers_clause", "purpose_limitation", "purpose_clause",
    "survives_end", "survives_clause", "security_clause",
)
RETENTION_KEYS = ("clause", "plaintext", "encrypted_uploads_days", "outcomes_days",
                  "reference_snapshots", "after_end_days")
MONITORING_KEYS = (
    "evaluations_per_year", "evaluations_clause", "minutes_per_year", "minutes_clause",
    "renewal_notice_days", "renewal_clause", "force_majeure_notice_days", "force_majeure_clause",
)


def parse_agreement(src: Source) -> Agreement:
    top = Reader(src, (), src.data, AGREEMENT_KEYS)
    if top.text("format") != AGREEMENT_FORMAT:
        raise src.error(("format",), f"must be {AGREEMENT_FORMAT}")
    body = top.sub("agreement", AGREEMENT_BODY_KEYS)
    agreement_id = body.text("id")
    if not ID_RE.fullmatch(agreement_id):
        raise src.error(("agreement", "id"), "must be lower-case letters, digits and dashes")
    expected_name = f"{agreement_id}.yaml"
    if src.name != expected_name:
        raise src.error(("agreement", "id"),
                        f"the file of agreement {agreement_id} must be named {expected_name}")
    numbers_raw = body.mapping("numbers")
    numbers = tuple((str(k), str(v)) for k, v in numbers_raw.items())
    signed = body.sub("signed", ("date", "place"))
    signed_on = signed.day("date")
    assert signed_on is not None
    validity_r = body.sub("validity", ("from", "until", "clause"))
    start = validity_r.day("from")
    end = validity_r.day("until")
    assert start is not None and end is not None
    if end < start:
        raise src.error(("agreement", "validity", "until"), "is before validity.from")
    if start < signed_on:
        raise src.error(("agreement", "validity", "from"), "is before the agreement was signed")
    validity = Validity(start, end, validity_r.text("clause"))
    changes = body.optional_sub("changes", ("clause",))

    purposes = parse_purposes(src, body)
    parties = parse_parties(src, top)
    party_ids = {p.id for p in parties}
    for number_key, _ in numbers:
        if number_key not in party_ids:
            raise src.error(("agreement", "numbers", number_key), "is not one of the parties")

    confidentiality = parse_confidentiality(top.optional_sub("confidentiality",
                                                             CONFIDENTIALITY_KEYS))
    retention = parse_retention(top.optional_sub("retention", RETENTION_KEYS))
    monitoring = parse_monitoring(top.optional_sub("monitoring", MONITORING_KEYS))

    purpose_ids = {p.id for p in purposes}
    flows = [parse_flow(src, ("flows", str(name)), str(name), src.data["flows"][name],
                        party_ids, purpose_ids, confidentiality)
             for name in top.mapping("flows")]
    check_flow_references(src, flows)
    return Agreement(
        id=agreement_id, title=body.text("title"), numbers=numbers, signed_on=signed_on,
        signed_at=signed.text("place"), purposes=purposes, validity=validity,
        original_validity=validity, parties=parties, flows=tuple(flows), file=src.name,
        confidentiality=confidentiality, retention=retention, monitoring=monitoring,
        changes_clause=changes.text("clause") if changes else "",
        sha256=src.sha256,
    )


def parse_purposes(src: Source, body: Reader) -> tuple[Purpose, ...]:
    """The purposes of Pasal 1 and 2: each flow serves one."""
    purposes: list[Purpose] = []
    for purpose_id in body.mapping("purposes"):
        path: Path_ = ("agreement", "purposes", str(purpose_id))
        if not isinstance(purpose_id, str) or not ID_RE.fullmatch(purpose_id):
            raise src.error(path, "a purpose id must be lower-case letters, digits and dashes")
        pr = Reader(src, path, src.data["agreement"]["purposes"][purpose_id], ("text", "clause"))
        purposes.append(Purpose(purpose_id, pr.text("text"), pr.text("clause")))
    return tuple(purposes)


def parse_parties(src: Source, top: Reader) -> tuple[Party, ...]:
    """The parties; their ids are the agencies' SFTP user names."""
    parties: list[Party] = []
    for party_id in top.mapping("parties"):
        path: Path_ = ("parties", str(party_id))
        if not isinstance(party_id, str) or not ID_RE.fullmatch(party_id):
            raise src.error(path, "a party id must be lower-case letters, digits and dashes")
        pr = Reader(src, path, src.data["parties"][party_id], PARTY_KEYS)
        contact = None
        cr = pr.optional_sub("contact", CONTACT_KEYS)
        if cr is not None:
            contact = Contact(cr.text("unit"), cr.text("address", required=False),
                              cr.text("phone", required=False), cr.text("email", required=False),
                              cr.text("clause", required=False))
        signatory_name = signatory_position = ""
        sr = pr.optional_sub("signatory", ("name", "position"))
        if sr is not None:
            signatory_name = sr.text("name")
            signatory_position = sr.text("position", required=False)
        parties.append(Party(
            id=party_id, role=pr.text("role"), name=pr.text("name"),
            address=pr.text("address", required=False), signatory=signatory_name,
            signatory_position=signatory_position, contact=contact,
        ))
    return tuple(parties)


def parse_confidentiality(r: Reader | None) -> Confidentiality:
    if r is None:
        return Confidentiality()
    return Confidentiality(
        answers_only_to_requester=r.boolean("answers_only_to_requester", True),
        answers_clause=r.text("answers_clause", required=False),
        purpose_limitation=r.boolean("purpose_limitation", True),
        purpose_clause=r.text("purpose_clause", required=False),
        survives_end=r.boolean("survives_end", True),
        survives_clause=r.text("survives_clause", required=False),
        security_clause=r.text("security_clause", required=False),
    )


def parse_retention(r: Reader | None) -> Retention:
    if r is None:
        return Retention()
    return Retention(
        clause=r.text("clause", required=False),
        plaintext=r.choice("plaintext", ("after-processing",), "after-processing"),
        encrypted_uploads_days=r.integer("encrypted_uploads_days", default=90, minimum=0) or 0,
        outcomes_days=r.integer("outcomes_days", default=30, minimum=0) or 0,
        reference_snapshots=r.choice("reference_snapshots", ("current-only",), "current-only"),
        after_end_days=r.integer("after_end_days", default=30, minimum=0) or 0,
    )


def parse_monitoring(r: Reader | None) -> Monitoring:
    if r is None:
        return Monitoring()
    return Monitoring(
        evaluations_per_year=r.integer("evaluations_per_year", default=2) or 2,
        evaluations_clause=r.text("evaluations_clause", required=False),
        minutes_per_year=r.integer("minutes_per_year", default=2) or 2,
        minutes_clause=r.text("minutes_clause", required=False),
        renewal_notice_days=r.integer("renewal_notice_days", default=30) or 30,
        renewal_clause=r.text("renewal_clause", required=False),
        force_majeure_notice_days=r.integer("force_majeure_notice_days", default=14) or 14,
        force_majeure_clause=r.text("force_majeure_clause", required=False),
    )
