"""Employing agencies (instansi) of synthetic civil servants: ministries, and regional
governments by province."""

from __future__ import annotations

from typing import Final

__all__ = ["INSTANSI", "INSTANSI_CENTRAL", "INSTANSI_REGIONAL"]

# --------------------------------------------------------------------------
# Employing agencies (instansi).  Most ASN work for regional governments
# (teachers, health workers); the rest for ministries and central agencies.
# --------------------------------------------------------------------------

INSTANSI_CENTRAL: Final[tuple[str, ...]] = (
    "Kementerian Sosial",
    "Badan Kepegawaian Negara",
    "Kementerian Agama",
    "Kementerian Pendidikan, Kebudayaan, Riset, dan Teknologi",
    "Kementerian Pendidikan Dasar dan Menengah",
    "Kementerian Kesehatan",
    "Kementerian Keuangan",
    "Kementerian Dalam Negeri",
    "Kementerian Hukum dan Hak Asasi Manusia",
    "Kementerian Pertanian",
    "Kementerian Perhubungan",
    "Kementerian Pekerjaan Umum dan Perumahan Rakyat",
    "Kementerian Lingkungan Hidup dan Kehutanan",
    "Kementerian Kelautan dan Perikanan",
    "Kementerian Luar Negeri",
    "Kementerian Ketenagakerjaan",
    "Kementerian Agraria dan Tata Ruang/Badan Pertanahan Nasional",
    "Kementerian Desa, Pembangunan Daerah Tertinggal, dan Transmigrasi",
    "Kementerian Pendayagunaan Aparatur Negara dan Reformasi Birokrasi",
    "Kejaksaan Republik Indonesia",
    "Mahkamah Agung",
    "Badan Pusat Statistik",
    "Badan Pemeriksa Keuangan",
    "Badan Meteorologi, Klimatologi, dan Geofisika",
    "Badan Pengawas Obat dan Makanan",
    "Badan Riset dan Inovasi Nasional",
    "Badan Nasional Penanggulangan Bencana",
    "Lembaga Administrasi Negara",
)

# (province code, instansi): lets a regional civil servant work in the
# province of his or her NIK, as most do.
INSTANSI_REGIONAL: Final[tuple[tuple[int, str], ...]] = (
    (11, "Pemerintah Provinsi Aceh"),
    (11, "Pemerintah Kabupaten Aceh Utara"),
    (12, "Pemerintah Provinsi Sumatera Utara"),
    (12, "Pemerintah Kota Medan"),
    (12, "Pemerintah Kabupaten Deli Serdang"),
    (13, "Pemerintah Kota Padang"),
    (14, "Pemerintah Kota Pekanbaru"),
    (16, "Pemerintah Kota Palembang"),
    (18, "Pemerintah Kabupaten Lampung Tengah"),
    (31, "Pemerintah Provinsi DKI Jakarta"),
    (32, "Pemerintah Provinsi Jawa Barat"),
    (32, "Pemerintah Kabupaten Bandung"),
    (32, "Pemerintah Kabupaten Bogor"),
    (32, "Pemerintah Kabupaten Garut"),
    (32, "Pemerintah Kota Bandung"),
    (33, "Pemerintah Provinsi Jawa Tengah"),
    (33, "Pemerintah Kabupaten Banyumas"),
    (33, "Pemerintah Kota Semarang"),
    (34, "Pemerintah Daerah Daerah Istimewa Yogyakarta"),
    (34, "Pemerintah Kabupaten Sleman"),
    (35, "Pemerintah Provinsi Jawa Timur"),
    (35, "Pemerintah Kota Surabaya"),
    (35, "Pemerintah Kabupaten Malang"),
    (35, "Pemerintah Kabupaten Jember"),
    (36, "Pemerintah Kabupaten Tangerang"),
    (51, "Pemerintah Provinsi Bali"),
    (51, "Pemerintah Kabupaten Gianyar"),
    (52, "Pemerintah Kabupaten Lombok Timur"),
    (53, "Pemerintah Provinsi Nusa Tenggara Timur"),
    (53, "Pemerintah Kabupaten Kupang"),
    (61, "Pemerintah Kota Pontianak"),
    (63, "Pemerintah Kota Banjarmasin"),
    (64, "Pemerintah Provinsi Kalimantan Timur"),
    (71, "Pemerintah Kota Manado"),
    (73, "Pemerintah Provinsi Sulawesi Selatan"),
    (73, "Pemerintah Kota Makassar"),
    (73, "Pemerintah Kabupaten Gowa"),
    (81, "Pemerintah Kota Ambon"),
    (94, "Pemerintah Kota Jayapura"),
)

INSTANSI: Final[tuple[str, ...]] = INSTANSI_CENTRAL + tuple(n for _, n in INSTANSI_REGIONAL)
