"""The agreement's two periodic documents, built from the ledger's figures.

- the *berita acara hasil pemadanan data* (minutes of the data-matching results,
  Pasal 3 ayat (2) huruf d, Pasal 4 ayat (1) huruf d), at least twice a year;
- the *laporan pemantauan dan evaluasi* (monitoring and evaluation, Pasal 7).

Both are in Indonesian, the language the parties sign in, with the agreement's
parties and officials taken from the policy, and name the signed checkpoint
their figures were computed from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from exchanged import __version__
from exchanged.ledger.treehead import TreeHead
from exchanged.policy.model import Agreement
from exchanged.reasons import label
from exchanged.reports.charts import flow_chart, reasons_chart
from exchanged.reports.document import Chart, Document, Section, Signature, table
from exchanged.reports.figures import FlowFigures, Period
from exchanged.reports.numbers import angka as n
from exchanged.reports.numbers import persen, tanggal


@dataclass(frozen=True)
class Context:
    """What both documents are made from besides the agreement and its figures."""

    period: Period
    head: TreeHead
    generated: str
    #: the period has not ended yet when the document is made
    open_period: bool


def _common(agreement: Agreement, ctx: Context) -> tuple[tuple[str, str], ...]:
    period, head, generated = ctx.period, ctx.head, ctx.generated
    numbers = "; ".join(f"{party}: {number}" for party, number in agreement.numbers)
    status = ("belum berakhir: angka sementara, sampai saat dokumen dibuat" if ctx.open_period
              else "telah berakhir")
    return (
        ("Perjanjian", f"{agreement.title}"),
        ("Nomor", numbers),
        ("Ditandatangani", f"{agreement.signed_at}, {tanggal(agreement.signed_on)}"),
        ("Periode", f"{period.label}: {tanggal(period.first_day)} s.d. "
                    f"{tanggal(period.last_day)} ({status})"),
        ("Sumber angka", f"ledger exchange, entri 1 s.d. {head.tree_size} "
                         f"(checkpoint {head.timestamp}, tree head {head.root_hash})"),
        ("Kunci exchange", head.exchange_fingerprint),
        ("Dibuat", generated),
    )


def _parties(agreement: Agreement) -> Section:
    rows = []
    for p in agreement.parties:
        c = p.contact
        contact = "; ".join(x for x in ((c.unit, c.address, c.phone, c.email) if c else ()) if x)
        rows.append((p.role, p.name, f"{p.signatory}, {p.signatory_position}".strip(", "),
                     contact + (f" ({c.clause})" if c and c.clause else "")))
    return Section("Para Pihak", tables=(table(
        ("Pihak", "Instansi", "Penandatangan perjanjian", "Korespondensi (Pasal 8)"), rows),))


def _footer(head: TreeHead) -> tuple[str, ...]:
    return (f"Dokumen ini dibuat oleh exchanged {__version__} dari ledger {head.ledger_id}; "
            "tidak memuat data pribadi.",)


def _signatures(agreement: Agreement) -> tuple[Signature, ...]:
    out = []
    for p in agreement.parties:
        official = p.contact.unit if p.contact else p.name
        out.append(Signature(p.role, p.name, official, "Nama / NIP / tanggal"))
    return tuple(out)


def _recheck(kind: str, agreement: Agreement, period: Period, head: TreeHead) -> Section:
    return Section("Pemeriksaan ulang", paragraphs=(
        "Angka dalam dokumen ini dihitung dari entri ledger 1 sampai "
        f"{head.tree_size}, yang dijamin oleh checkpoint yang ditandatangani exchange "
        f"(tree head {head.root_hash}) dan telah dikirim ke setiap pihak. Setiap pihak dapat "
        "meminta angka yang sama dihitung ulang dengan perintah "
        f"'exchanged report {kind} --agreement {agreement.id} --period {period.label} "
        "--checkpoint <berkas checkpoint> --format json', dan memeriksa dengan "
        "'exchanged ledger verify --against <berkas checkpoint>' bahwa ledger memuat entri "
        "tersebut tanpa perubahan.",
    ))


STATUS_LABELS = {
    "loaded": "Baris dimuat ke data rujukan",
    "invalid": "Baris tidak sah (tidak dimuat)",
    "ASN": "ASN (keterangan ASN)",
    "TIDAK_DITEMUKAN": "TIDAK_DITEMUKAN (data tidak ditemukan)",
    "TIDAK_VALID": "TIDAK_VALID (NIK tidak sah)",
    "KEMUNGKINAN_ASN": "KEMUNGKINAN_ASN (perlu konfirmasi)",
    "SESUAI": "SESUAI",
    "BERBEDA": "BERBEDA (perbedaan data)",
    "KPM": "KPM (penerima manfaat)",
}


def _flow_rows(f: FlowFigures) -> list[tuple[str, str]]:
    # received = results + rejected + pending: every batch received in the period, once
    rows = [("Batch diterima dalam periode", n(f.received)),
            ("– dijawab dengan hasil", n(f.results)), ("– ditolak", n(f.rejected)),
            ("– belum dijawab", n(f.pending)), ("Baris diproses", n(f.rows))]
    rows += [(STATUS_LABELS.get(status, status), n(count))
             for status, count in sorted(f.statuses.items())]
    if f.loads:
        rows.append(("Data rujukan dimuat", n(f.loads)))
        if f.last_load_rows is not None:
            rows.append(("Baris data rujukan terakhir", n(f.last_load_rows)))
    return rows


def _reasons(reasons: Counter[str]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple((code, n(count), label(code), label(code, "en"))
                 for code, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


REASON_HEADERS = ("Kode", "Batch ditolak", "Keterangan", "Description")


def _several(count: int) -> str:
    return (f"{n(count)} batch ditolak dengan lebih dari satu alasan; batch seperti itu "
            "dihitung pada setiap alasannya, sehingga jumlah per alasan dapat melebihi jumlah "
            "batch yang ditolak.") if count else ""


def _charts(figures: dict[str, FlowFigures]) -> tuple[Chart, ...]:
    reasons: Counter[str] = Counter()
    for f in figures.values():
        reasons.update(f.reasons)
    drawn = [flow_chart(f) for f in figures.values()] + [reasons_chart(reasons)]
    return tuple(c for c in drawn if c is not None)


def _provisional(ctx: Context) -> str:
    return (f"SEMENTARA: periode {ctx.period.label} belum berakhir; angka dapat berubah."
            if ctx.open_period else "")


def berita_acara(agreement: Agreement, figures: dict[str, FlowFigures], ctx: Context
                 ) -> Document:
    period, head = ctx.period, ctx.head
    sections = [_parties(agreement)]
    for flow in agreement.flows:
        f = figures[flow.name]
        purpose = agreement.purpose(flow.purpose)
        paragraphs = [f"{purpose.text if purpose else flow.purpose} ({flow.clause}). "
                      f"Pengirim: {flow.sender}."]
        tables = [table(("Uraian", "Jumlah"), _flow_rows(f))]
        if f.reasons:
            tables.append(table(REASON_HEADERS, _reasons(f.reasons)))
            if f.several_reasons:
                paragraphs.append(_several(f.several_reasons))
        sections.append(Section(f"Alur {flow.name}", tuple(paragraphs), tuple(tables)))
    discrepancy_rows = []
    for flow in agreement.flows:
        f = figures[flow.name]
        for status in (flow.answer.invalid, flow.answer.differs):
            if status and f.statuses.get(status):
                discrepancy_rows.append((flow.name, status, n(f.statuses[status])))
    sections.append(Section(
        "Perbedaan data",
        paragraphs=("Baris yang datanya tidak sah atau berbeda dengan data pihak lain, untuk "
                    "diselesaikan para pihak (Pasal 3 ayat (2) huruf g, Pasal 4 ayat (2) huruf g). "
                    "Rinciannya per baris ada pada jawaban yang diterima pihak pengirim.",),
        tables=(table(("Alur", "Status", "Jumlah baris"), discrepancy_rows),)
        if discrepancy_rows else (),
    ))
    sections.append(_recheck("berita-acara", agreement, period, head))
    totals = {name: f.as_dict() for name, f in figures.items()}
    return Document(
        kind="berita-acara",
        title="Berita Acara Hasil Pemadanan Data",
        subtitle=f"{agreement.id} — periode {period.label} "
                 f"({agreement.monitoring.minutes_clause or 'Pasal 3 ayat (2) huruf d'})",
        facts=_common(agreement, ctx),
        sections=tuple(sections),
        signatures=_signatures(agreement),
        footer=_footer(head),
        figures={"agreement": agreement.id, "period": period.label, "ended": not ctx.open_period,
                 "tree_size": head.tree_size, "root_hash": head.root_hash, "flows": totals},
        charts=_charts(figures),
        provisional=_provisional(ctx),
        parties=tuple(p.name for p in agreement.parties),
    )


def evaluasi(agreement: Agreement, figures: dict[str, FlowFigures], events: Counter[str],
             ctx: Context, *, ledger_ok: bool, previous: str) -> Document:
    """``previous``: what became of the previous period's evaluation (a sentence)."""
    period, head = ctx.period, ctx.head
    v = agreement.validity
    m = agreement.monitoring
    status_rows = [
        ("Berlaku", f"{tanggal(v.start)} s.d. {tanggal(v.end)} ({v.clause})"),
        ("Berlaku pada akhir periode", "ya" if agreement.in_force(period.last_day) else "tidak"),
    ]
    if agreement.terminated_on:
        status_rows.append(("Diakhiri", f"{tanggal(agreement.terminated_on)} "
                                        f"({agreement.termination_reference})"))
    status_rows.append(("Pemberitahuan perpanjangan/pengakhiran paling lambat",
                        f"{tanggal(v.end - timedelta(days=m.renewal_notice_days))} "
                        f"({m.renewal_clause})"))
    for add in agreement.addenda:
        label = " (CONTOH)" if add.example else ""
        status_rows.append((f"Adendum {add.number}{label}", add.reference))
    sections = [Section("Status perjanjian", tables=(table(("Uraian", "Keterangan"),
                                                           status_rows),))]
    months = sorted({month for f in figures.values() for month in f.by_month})
    activity = [(flow, *[n(figures[flow].by_month.get(month, 0)) for month in months],
                 n(figures[flow].received), n(figures[flow].rejected),
                 persen(figures[flow].rejected, figures[flow].received))
                for flow in figures]
    sections.append(Section(
        "Kegiatan pertukaran data",
        paragraphs=("Batch diterima per bulan (UTC), jumlah, dan tingkat penolakan per alur.",),
        tables=(table(("Alur", *months, "Jumlah", "Ditolak", "Penolakan"), activity),),
    ))
    reasons: Counter[str] = Counter()
    for f in figures.values():
        reasons.update(f.reasons)
    if reasons:
        several = sum(f.several_reasons for f in figures.values())
        sections.append(Section("Alasan penolakan",
                                paragraphs=(_several(several),) if several else (),
                                tables=(table(REASON_HEADERS, _reasons(reasons)),)))
    labels = (
        ("login.failed", "Login SFTP gagal"),
        ("upload.interrupted", "Unggahan terputus (tidak diproses)"),
        ("batch.failed", "Kesalahan internal exchange"),
        ("exchange.available", "Pemulihan setelah exchange tidak dapat menulis"),
        ("policy.reloaded", "Kebijakan dimuat ulang"),
        ("policy.reload_failed", "Pemuatan ulang kebijakan ditolak"),
        ("policy.extended", "Adendum perpanjangan dicatat"),
        ("policy.terminated", "Adendum pengakhiran dicatat"),
        ("agreement.force_majeure", "Pemberitahuan keadaan kahar (Pasal 10)"),
        ("ledger.checkpoint", "Checkpoint ledger ditandatangani"),
    )
    sections.append(Section("Keamanan dan operasional (Pasal 9)", tables=(
        table(("Kejadian", "Jumlah"), [(label, n(events.get(kind, 0))) for kind, label in labels]),
    )))
    sections.append(Section("Integritas ledger", paragraphs=(
        f"Rantai hash ledger {'utuh' if ledger_ok else 'TIDAK UTUH'} saat dokumen ini dibuat; "
        f"checkpoint {head.tree_size} entri, tree head {head.root_hash}.",
    )))
    due = f"{m.evaluations_per_year} kali setahun ({m.evaluations_clause}); {previous}"
    sections.append(Section("Jadwal pemantauan dan evaluasi", paragraphs=(due,)))
    sections.append(_recheck("evaluasi", agreement, period, head))
    return Document(
        kind="evaluasi",
        title="Laporan Pemantauan dan Evaluasi",
        subtitle=f"{agreement.id} — periode {period.label} ({m.evaluations_clause or 'Pasal 7'})",
        facts=_common(agreement, ctx),
        sections=tuple(sections),
        signatures=_signatures(agreement),
        footer=_footer(head),
        figures={"agreement": agreement.id, "period": period.label, "ended": not ctx.open_period,
                 "tree_size": head.tree_size, "root_hash": head.root_hash,
                 "flows": {name: f.as_dict() for name, f in figures.items()},
                 "events": dict(events), "ledger_ok": ledger_ok},
        charts=_charts(figures),
        provisional=_provisional(ctx),
        parties=tuple(p.name for p in agreement.parties),
    )
