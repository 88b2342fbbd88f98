"""The catalogue of reasons a batch is refused: stable codes, in English and Indonesian.

Agencies script against these codes, so a code never changes meaning once
shipped. Each sentence says what was wrong and, where it helps, what to do;
none ever contains personal data (values from the batch): only column names,
line numbers, dates of the agreement and the like. The rejection file carries
the English sentence (``message``, as the contract says) and the Indonesian one
(``pesan``); ``policy explain`` and docs/reasons.md show both.
"""

from __future__ import annotations

from exchanged.errors import Reason

#: code -> (English, Indonesian) sentence templates (str.format placeholders)
CATALOGUE: dict[str, tuple[str, str]] = {
    # the file and its name
    "BAD_FILE_NAME": (
        "The file name {name} does not follow the rule <batch-id>.csv.gpg (or .csv.pgp, "
        ".csv.asc) with a batch id of 1 to 64 characters A-Z a-z 0-9 . _ -; "
        "this outcome uses the exchange's id {batch} instead.",
        "Nama berkas {name} tidak mengikuti aturan <batch-id>.csv.gpg (atau .csv.pgp, .csv.asc) "
        "dengan batch id 1 sampai 64 karakter A-Z a-z 0-9 . _ -; hasil ini memakai id {batch} "
        "dari exchange.",
    ),
    "BATCH_ID_LOOKS_PERSONAL": (
        "The batch id carries something like a NIK, NIP or date of birth (ten digits or more, "
        "or an old date); batch ids must not carry personal data, so this outcome uses the "
        "exchange's id {batch}. Use another batch id.",
        "Batch id memuat sesuatu yang menyerupai NIK, NIP atau tanggal lahir (sepuluh digit atau "
        "lebih, atau tanggal lama); batch id tidak boleh memuat data pribadi, sehingga hasil ini "
        "memakai id {batch} dari exchange. Gunakan batch id lain.",
    ),
    "RESERVED_BATCH_ID": (
        "The batch id has the form of a name the exchange gives outcomes itself (ending in "
        ".replay-<n>, or an upload id like 20261126T030405Z-0a1b2c3d); this outcome uses the "
        "exchange's id {batch}. Use another batch id.",
        "Batch id berbentuk nama yang dipakai exchange sendiri untuk hasil (berakhiran "
        ".replay-<n>, atau id unggahan seperti 20261126T030405Z-0a1b2c3d); hasil ini memakai id "
        "{batch} dari exchange. Gunakan batch id lain.",
    ),
    "EMPTY_UPLOAD": ("The uploaded file is empty.", "Berkas yang diunggah kosong."),
    "UPLOAD_TOO_LARGE": (
        "The upload is {size} bytes, over the flow's limit of {limit} bytes.",
        "Unggahan berukuran {size} byte, melebihi batas alur ini sebesar {limit} byte.",
    ),
    "REPLAY": (
        "Batch id {batch} was already used for flow {flow} by this agency (first received "
        "{first}); its first outcome stays as it was. Send the batch under a new batch id.",
        "Batch id {batch} sudah pernah dipakai instansi ini untuk alur {flow} (pertama diterima "
        "{first}); hasil pertamanya tidak diubah. Kirim ulang dengan batch id baru.",
    ),
    # OpenPGP
    "NOT_OPENPGP": ("The upload is not an OpenPGP message.",
                    "Unggahan bukan pesan OpenPGP."),
    "CORRUPT_MESSAGE": (
        "The OpenPGP message is damaged or truncated and cannot be opened completely.",
        "Pesan OpenPGP rusak atau terpotong sehingga tidak dapat dibuka seluruhnya.",
    ),
    "NOT_ENCRYPTED": (
        "The upload is not encrypted; encrypt it to the exchange's key (see exchange-public.asc).",
        "Unggahan tidak dienkripsi; enkripsi dengan kunci exchange (lihat exchange-public.asc).",
    ),
    "NOT_ENCRYPTED_TO_EXCHANGE": (
        "The upload is encrypted, but not to the exchange's key {fingerprint}.",
        "Unggahan dienkripsi, tetapi tidak untuk kunci exchange {fingerprint}.",
    ),
    "SIGNED_IN_THE_FUTURE": (
        "The upload's signature is dated {signed}, after it was received ({received}); check "
        "the clock of the machine that signs batches and sign it again.",
        "Tanda tangan unggahan bertanggal {signed}, setelah unggahan diterima ({received}); "
        "periksa jam komputer yang menandatangani batch, lalu tandatangani ulang.",
    ),
    "NOT_SIGNED": (
        "The upload is not signed; sign it with the agency's pinned key {fingerprint}.",
        "Unggahan tidak ditandatangani; tandatangani dengan kunci instansi yang terdaftar "
        "{fingerprint}.",
    ),
    "BAD_SIGNATURE": (
        "The upload's signature does not verify: the content was altered or damaged.",
        "Tanda tangan unggahan tidak sah: isinya telah berubah atau rusak.",
    ),
    "WRONG_SIGNER": (
        "The upload is signed by a key other than the agency's pinned key {fingerprint}.",
        "Unggahan ditandatangani dengan kunci selain kunci instansi yang terdaftar {fingerprint}.",
    ),
    "SIGNER_KEY_EXPIRED": (
        "The upload is signed with the agency's key, but that key has expired.",
        "Unggahan ditandatangani dengan kunci instansi, tetapi kunci itu sudah kedaluwarsa.",
    ),
    "SIGNER_KEY_REVOKED": (
        "The upload is signed with the agency's key, but that key is revoked.",
        "Unggahan ditandatangani dengan kunci instansi, tetapi kunci itu sudah dicabut.",
    ),
    "WEAK_SIGNATURE": (
        "The upload is signed with the {hash} hash algorithm, too weak to prove who sent it; "
        "sign it again with SHA-256 or stronger (gpg --digest-algo SHA256).",
        "Unggahan ditandatangani dengan algoritma hash {hash} yang terlalu lemah untuk "
        "membuktikan pengirimnya; tandatangani ulang dengan SHA-256 atau yang lebih kuat "
        "(gpg --digest-algo SHA256).",
    ),
    "TOO_LARGE_DECRYPTED": (
        "The batch decrypts to more than the flow's limit of {limit} bytes; it was not processed.",
        "Isi batch setelah didekripsi melebihi batas alur ini sebesar {limit} byte; batch tidak "
        "diproses.",
    ),
    # the CSV
    "BAD_ENCODING": ("The batch is not valid UTF-8 text (line {line}).",
                     "Batch bukan teks UTF-8 yang sah (baris {line})."),
    "NO_HEADER": ("The batch has no header row.", "Batch tidak memiliki baris judul kolom."),
    "BAD_HEADER": ("The header row is not valid: {detail}.",
                   "Baris judul kolom tidak sah: {detail}."),
    "DUPLICATE_COLUMN": ("The header names column {column} more than once.",
                         "Kolom {column} disebut lebih dari sekali pada baris judul."),
    "MISSING_COLUMN": (
        "Required column {column} is missing (flow {flow} needs: {required}).",
        "Kolom wajib {column} tidak ada (alur {flow} memerlukan: {required}).",
    ),
    "COLUMN_NOT_ALLOWED": (
        "Column {column} is not listed for flow {flow} by the agreement ({clause}); send only "
        "the columns it lists: {allowed}.",
        "Kolom {column} tidak tercantum untuk alur {flow} dalam perjanjian ({clause}); kirim "
        "hanya kolom yang tercantum: {allowed}.",
    ),
    "TOO_MANY_ROWS": ("The batch has more than the flow's limit of {limit} rows.",
                      "Batch memuat lebih dari batas alur ini sebanyak {limit} baris."),
    "NO_ROWS": ("The batch has a header but no data rows.",
                "Batch memiliki baris judul tetapi tidak memuat data."),
    "REPEATED_NIP": (
        "A NIP appears on more than one line of the batch: {count} line(s) repeat the NIP of "
        "an earlier line; the first: {lines} (each with, in brackets, the line where its NIP "
        "first appears). A NIP may appear on one line only of a batch of flow {flow} "
        "({clause}); nothing was compared. Send each employee once.",
        "Satu NIP muncul pada lebih dari satu baris batch: {count} baris mengulang NIP dari "
        "baris sebelumnya; yang pertama: {lines} (masing-masing dengan, dalam kurung, baris "
        "tempat NIP-nya pertama muncul). Satu NIP hanya boleh muncul pada satu baris dalam "
        "batch alur {flow} ({clause}); tidak ada yang dipadankan. Kirim setiap pegawai satu "
        "kali.",
    ),
    "STALE_REFERENCE": (
        "This {dataset} upload (signed {signed}, received {received}) is older than the one "
        "in force (signed {current_signed}, received {current_received}); an older snapshot "
        "cannot replace a newer one.",
        "Unggahan {dataset} ini (ditandatangani {signed}, diterima {received}) lebih lama "
        "daripada data yang berlaku (ditandatangani {current_signed}, diterima "
        "{current_received}); data lama tidak dapat menggantikan data yang lebih baru.",
    ),
    "NO_ROOM_FOR_BATCH": (
        "Processing this batch would need about {need} MB of the exchange's disk, more than it "
        "can set aside ({room} MB); split it into smaller batches.",
        "Pemrosesan batch ini memerlukan sekitar {need} MB ruang disk exchange, melebihi yang "
        "dapat disediakan ({room} MB); pecah menjadi beberapa batch yang lebih kecil.",
    ),
    "NO_VALID_ROWS": (
        "No row of the reference data is valid; the previous snapshot stays in force.",
        "Tidak ada baris data rujukan yang sah; data sebelumnya tetap berlaku.",
    ),
    # policy
    "AGREEMENT_NOT_IN_FORCE": (
        "Agreement {agreement} is not in force on {date}: it is valid from {start} to {end} "
        "({clause}).",
        "Perjanjian {agreement} tidak berlaku pada {date}: masa berlakunya {start} sampai {end} "
        "({clause}).",
    ),
    "AGREEMENT_TERMINATED": (
        "Agreement {agreement} was terminated on {date} ({reference}; {clause}).",
        "Perjanjian {agreement} telah diakhiri pada {date} ({reference}; {clause}).",
    ),
    "FLOW_SUSPENDED": (
        "Flow {flow} is suspended from {start} to {end} ({reference}; {clause}).",
        "Alur {flow} dihentikan sementara dari {start} sampai {end} ({reference}; {clause}).",
    ),
    "FLOW_NOT_PERMITTED": (
        "Agency {agency} may not send flow {flow} under agreement {agreement} ({clause}).",
        "Instansi {agency} tidak berhak mengirim alur {flow} berdasarkan perjanjian {agreement} "
        "({clause}).",
    ),
    "NOT_A_RECIPIENT": (
        "The answer of flow {flow} may go only to {recipients}, not to {agency} ({clause}).",
        "Jawaban alur {flow} hanya boleh diberikan kepada {recipients}, bukan kepada {agency} "
        "({clause}).",
    ),
    "DISCLOSURE_NOT_ALLOWED": (
        "Field {field} may not be disclosed by flow {flow} ({clause}); it may disclose only: "
        "{allowed}.",
        "Data {field} tidak boleh diungkapkan oleh alur {flow} ({clause}); yang boleh hanya: "
        "{allowed}.",
    ),
    "NO_POLICY": (
        "No agreement defines flow {flow} for agency {agency} (any more).",
        "Tidak ada (lagi) perjanjian yang mengatur alur {flow} untuk instansi {agency}.",
    ),
    "NO_REFERENCE_DATA": (
        "The reference data this flow matches against ({dataset}) has not been loaded yet.",
        "Data rujukan untuk pemadanan alur ini ({dataset}) belum dimuat.",
    ),
    "NIK_NOT_TOKENIZED": (
        "Line {line}: column {column} holds a value that is not a keyed token; flow {flow} "
        "matches on keyed tokens ({addendum}) and takes no raw NIK. Tokenize the batch on "
        "your own machine with 'exchanged submit --tokenize' and send it again under a new "
        "batch id.",
        "Baris {line}: kolom {column} memuat nilai yang bukan token berkunci; alur {flow} "
        "memadankan token berkunci ({addendum}) dan tidak menerima NIK mentah. Ubah batch "
        "menjadi token di komputer sendiri dengan 'exchanged submit --tokenize' lalu kirim "
        "ulang dengan batch id baru.",
    ),
    "TOKEN_KEY_MISMATCH": (
        "Line {line}: column {column} holds a token made with the token key {found}, but flow "
        "{flow} matches tokens of the key {expected} named by {addendum}; check that your token "
        "key's fingerprint is the addendum's.",
        "Baris {line}: kolom {column} memuat token yang dibuat dengan kunci token {found}, "
        "sedangkan alur {flow} memadankan token dengan kunci {expected} yang disebut {addendum}; "
        "periksa bahwa sidik jari kunci token Anda sama dengan yang tercantum dalam adendum.",
    ),
    "TOKEN_IN_PLAIN_FLOW": (
        "Line {line}: column {column} holds a keyed token, but flow {flow} matches NIKs, not "
        "tokens; send the NIKs themselves (without --tokenize).",
        "Baris {line}: kolom {column} memuat token berkunci, sedangkan alur {flow} memadankan "
        "NIK, bukan token; kirim NIK-nya sendiri (tanpa --tokenize).",
    ),
    "REFERENCE_NOT_TOKENIZED": (
        "The reference data this flow matches against ({dataset}) was loaded as {loaded}, but "
        "the flow matches {wanted}; the dataset must be loaded again as the flow matches.",
        "Data rujukan untuk pemadanan alur ini ({dataset}) dimuat sebagai {loaded}, sedangkan "
        "alur ini memadankan {wanted}; data itu harus dimuat ulang dengan cara yang sama.",
    ),
    "FLOW_NOT_AVAILABLE": (
        "Flow {flow} is in the agreement, but this exchange cannot process it yet.",
        "Alur {flow} ada dalam perjanjian, tetapi exchange ini belum dapat memprosesnya.",
    ),
    # the exchange itself
    "EXCHANGE_ERROR": (
        "The exchange could not process this batch because of an internal error (recorded in "
        "ledger entry {seq}); the operator has been alerted. Send it again under a new batch id.",
        "Exchange tidak dapat memproses batch ini karena kesalahan internal (tercatat pada entri "
        "ledger {seq}); operator telah diberi tahu. Kirim ulang dengan batch id baru.",
    ),
    # a cosignature of a ledger checkpoint (an agency as witness; not a batch)
    "BAD_COSIGNATURE": (
        "The cosignature of checkpoint {size} is not a valid tlog-cosignature of that "
        "checkpoint by the agency's witness key ({why}); nothing was recorded.",
        "Kosignatur checkpoint {size} bukan tlog-cosignature yang sah atas checkpoint itu oleh "
        "kunci saksi instansi ({why}); tidak ada yang dicatat.",
    ),
    "WITNESS_KEY_MISMATCH": (
        "The cosignature is by witness key {key_id}, not by the key {registered} registered "
        "for this agency; an administrator replaces it with 'exchanged agency update "
        "--witness-key' after checking it by a second channel.",
        "Kosignatur dibuat dengan kunci saksi {key_id}, bukan kunci {registered} yang terdaftar "
        "untuk instansi ini; administrator menggantinya dengan 'exchanged agency update "
        "--witness-key' setelah memeriksanya lewat saluran kedua.",
    ),
    "UNKNOWN_CHECKPOINT": (
        "The exchange published no checkpoint of size {size}: only a checkpoint it published "
        "can be co-signed.",
        "Exchange tidak menerbitkan checkpoint berukuran {size}: hanya checkpoint yang "
        "diterbitkannya yang dapat dikosignasi.",
    ),
}


def reason(code: str, **params: object) -> Reason:
    """Build the :class:`Reason` for ``code`` with its sentences filled in.

    >>> reason("EMPTY_UPLOAD")  # doctest: +NORMALIZE_WHITESPACE
    Reason(code='EMPTY_UPLOAD', message='The uploaded file is empty.',
           pesan='Berkas yang diunggah kosong.')
    """
    english, indonesian = CATALOGUE[code]
    return Reason(code, english.format(**params), indonesian.format(**params))


#: code -> (English, Indonesian) short label, for tables that count refusals (reports, the
#: ledger browser): a phrase with no placeholder, where the sentence above names specifics
LABELS: dict[str, tuple[str, str]] = {
    "BAD_COSIGNATURE": ("cosignature does not verify", "kosignatur tidak sah"),
    "WITNESS_KEY_MISMATCH": ("not the registered witness key", "bukan kunci saksi terdaftar"),
    "UNKNOWN_CHECKPOINT": ("no such checkpoint", "checkpoint tidak dikenal"),
    "BAD_FILE_NAME": ("file name breaks the rule", "nama berkas tidak sesuai aturan"),
    "BATCH_ID_LOOKS_PERSONAL": ("batch id looks like personal data",
                                "batch id menyerupai data pribadi"),
    "RESERVED_BATCH_ID": ("batch id reserved for the exchange", "batch id dicadangkan exchange"),
    "EMPTY_UPLOAD": ("empty upload", "unggahan kosong"),
    "UPLOAD_TOO_LARGE": ("upload over the flow's limit", "unggahan melebihi batas alur"),
    "REPLAY": ("batch id used before", "batch id sudah pernah dipakai"),
    "NOT_OPENPGP": ("not an OpenPGP message", "bukan pesan OpenPGP"),
    "CORRUPT_MESSAGE": ("damaged or truncated message", "pesan rusak atau terpotong"),
    "NOT_ENCRYPTED": ("not encrypted", "tidak dienkripsi"),
    "NOT_ENCRYPTED_TO_EXCHANGE": ("encrypted to another key", "dienkripsi untuk kunci lain"),
    "SIGNED_IN_THE_FUTURE": ("signature dated after receipt",
                             "tanda tangan bertanggal setelah diterima"),
    "NOT_SIGNED": ("not signed", "tidak ditandatangani"),
    "BAD_SIGNATURE": ("signature does not verify", "tanda tangan tidak sah"),
    "WRONG_SIGNER": ("signed by another key", "ditandatangani kunci lain"),
    "SIGNER_KEY_EXPIRED": ("signing key expired", "kunci penanda tangan kedaluwarsa"),
    "SIGNER_KEY_REVOKED": ("signing key revoked", "kunci penanda tangan dicabut"),
    "WEAK_SIGNATURE": ("signature over a weak hash", "tanda tangan dengan hash lemah"),
    "TOO_LARGE_DECRYPTED": ("decrypts to more than the limit", "hasil dekripsi melebihi batas"),
    "BAD_ENCODING": ("not UTF-8 text", "bukan teks UTF-8"),
    "NO_HEADER": ("no header row", "tanpa baris judul"),
    "BAD_HEADER": ("header row not valid", "baris judul tidak sah"),
    "DUPLICATE_COLUMN": ("column named twice", "kolom disebut dua kali"),
    "MISSING_COLUMN": ("required column missing", "kolom wajib tidak ada"),
    "COLUMN_NOT_ALLOWED": ("column not in the agreement", "kolom tidak tercantum dalam perjanjian"),
    "TOO_MANY_ROWS": ("more rows than the limit", "baris melebihi batas"),
    "NO_ROWS": ("no data rows", "tanpa baris data"),
    "REPEATED_NIP": ("a NIP on more than one line", "NIP muncul di lebih dari satu baris"),
    "STALE_REFERENCE": ("older than the data in force", "lebih lama daripada data yang berlaku"),
    "NO_ROOM_FOR_BATCH": ("too large for the exchange's disk", "terlalu besar untuk disk exchange"),
    "NO_VALID_ROWS": ("no valid row", "tidak ada baris yang sah"),
    "AGREEMENT_NOT_IN_FORCE": ("agreement not in force", "perjanjian tidak berlaku"),
    "AGREEMENT_TERMINATED": ("agreement terminated", "perjanjian telah diakhiri"),
    "FLOW_SUSPENDED": ("flow suspended", "alur dihentikan sementara"),
    "FLOW_NOT_PERMITTED": ("agency may not send the flow", "instansi tidak berhak mengirim alur"),
    "NOT_A_RECIPIENT": ("agency may not receive the answer",
                        "instansi tidak berhak menerima jawaban"),
    "DISCLOSURE_NOT_ALLOWED": ("field may not be disclosed", "data tidak boleh diungkapkan"),
    "NO_POLICY": ("no agreement for the flow", "tidak ada perjanjian untuk alur"),
    "NO_REFERENCE_DATA": ("reference data not loaded", "data rujukan belum dimuat"),
    "NIK_NOT_TOKENIZED": ("a raw NIK on a token flow", "NIK mentah pada alur token"),
    "TOKEN_KEY_MISMATCH": ("token of another key", "token dari kunci lain"),
    "TOKEN_IN_PLAIN_FLOW": ("a token on a NIK flow", "token pada alur NIK"),
    "REFERENCE_NOT_TOKENIZED": ("reference data loaded another way",
                                "data rujukan dimuat dengan cara lain"),
    "FLOW_NOT_AVAILABLE": ("flow not available yet", "alur belum tersedia"),
    "EXCHANGE_ERROR": ("internal error of the exchange", "kesalahan internal exchange"),
}


def label(code: str, language: str = "id") -> str:
    """The short label of ``code`` (``en`` or ``id``); the code itself if it has none.

    >>> label("NOT_SIGNED"), label("NOT_SIGNED", "en")
    ('tidak ditandatangani', 'not signed')
    """
    english, indonesian = LABELS.get(code, (code, code))
    return english if language == "en" else indonesian


#: code -> (English, Indonesian) label of why one row of an answer is invalid: the codes of
#: the ``alasan`` column (besides the CSV problems of a line and ``column:CODE`` of another
#: column, which docs/reasons.md lists); exchanged.ids.nik.PROBLEMS are all here
ROW_LABELS: dict[str, tuple[str, str]] = {
    "NIK_EMPTY": ("the NIK is empty", "NIK kosong"),
    "NIK_SCIENTIFIC_NOTATION": (
        "the NIK is written as a spreadsheet's number in scientific notation (3.17101E+15): "
        "its digits are lost; format the column as text and export again",
        "NIK tertulis sebagai angka notasi ilmiah dari lembar kerja (3.17101E+15): digitnya "
        "hilang; format kolom sebagai teks lalu ekspor ulang"),
    "NIK_NOT_DIGITS": ("the NIK holds characters other than the digits 0-9",
                       "NIK memuat karakter selain angka 0-9"),
    "NIK_WRONG_LENGTH": ("the NIK is not 16 digits long", "NIK tidak 16 digit"),
    "NIK_BAD_REGION": ("a region code of the NIK is 00", "kode wilayah NIK bernilai 00"),
    "NIK_BAD_DATE": ("the birth date in the NIK is not a real date",
                     "tanggal lahir dalam NIK bukan tanggal yang ada"),
    "NIK_BAD_SERIAL": ("the serial number of the NIK is 0000", "nomor urut NIK bernilai 0000"),
}
