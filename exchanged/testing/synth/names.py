"""Realistic Indonesian personal names: naming traditions, their pools, names composed from them.

Everything here is a constant tuple or a pure function of its arguments, so the
generator stays deterministic: a name is chosen by cutting digits off one
integer of random bits (``bits % n``, then ``bits //= n``), never by a global
random generator.

The names are common given names and family names, combined at random; any
resemblance of a generated name, birth date and NIK to a real person is
accidental, and the NIKs are never real ones (see
:mod:`exchanged.testing.synth.kpm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "BATAK_MARGA",
    "FEMALE_MONONYMS",
    "FEMALE_NAMES",
    "MALE_MONONYMS",
    "MALE_NAMES",
    "NameStyle",
    "STYLES",
    "compose_name",
    "style_named",
]

# --------------------------------------------------------------------------
# Single names.  Many Indonesians, especially Javanese born before the 1980s,
# have one name only; registers must cope with that (no "first/last" split).
# --------------------------------------------------------------------------

MALE_MONONYMS: Final[tuple[str, ...]] = (
    "Suparman", "Sutrisno", "Sugiyanto", "Sumarno", "Supriyadi", "Mulyono", "Suyanto",
    "Sukardi", "Paijo", "Sarno", "Tukiman", "Slamet", "Sugeng", "Wagiman", "Parjono",
    "Sunarto", "Sudarmo", "Karyono", "Kasmadi", "Suwarno", "Jumadi", "Wardoyo", "Harjono",
    "Sutarjo", "Sarwono", "Suparno", "Triyono", "Mujiono", "Giyanto", "Rusdi", "Nurhadi",
    "Margono", "Ponimin", "Sukirman", "Rohmat", "Kusnadi", "Ujang", "Dadang", "Yayat",
    "Otong", "Suherman", "Tarmizi", "Syamsuddin", "Afrizal", "Rustam", "Jumadil",
)

FEMALE_MONONYMS: Final[tuple[str, ...]] = (
    "Sumarni", "Suyati", "Tukiyem", "Sulastri", "Sriyani", "Wartini", "Sutini", "Painem",
    "Juminah", "Kasiyem", "Sunarsih", "Warsini", "Rukmini", "Suparmi", "Ngatini", "Sumiati",
    "Partini", "Sukarsih", "Waginah", "Mujiati", "Sriyatun", "Kustini", "Darmini", "Suwarti",
    "Saminah", "Rohani", "Iis", "Euis", "Enok", "Imas", "Cucu", "Aminah", "Hasnah",
    "Yusnidar", "Nurhayati", "Rosmiati", "Jumiati", "Sarinah", "Tumini", "Samini",
)

# --------------------------------------------------------------------------
# Regional and religious naming traditions.  "given" names come first,
# "second" names come after them (in Java these are often the father's or
# an invented second name, not an inherited surname); "family" names are
# inherited: Batak marga, Minahasan/Ambonese/Timorese/Papuan fam, Chinese-
# Indonesian adopted surnames.
# --------------------------------------------------------------------------

_JAVANESE_MALE: Final[tuple[str, ...]] = (
    "Agus", "Budi", "Eko", "Dwi", "Tri", "Bambang", "Joko", "Heru", "Rudi", "Hadi",
    "Bagus", "Wahyu", "Yudi", "Arif", "Dedi", "Teguh", "Sigit", "Dimas", "Adi", "Yoga",
    "Bayu", "Fajar", "Galih", "Anton", "Puji", "Sapto", "Endro", "Bima", "Catur", "Gilang",
    "Hendro", "Imam", "Nanang", "Rizky", "Setyo", "Totok", "Wawan", "Yusuf",
)
_JAVANESE_MALE_SECOND: Final[tuple[str, ...]] = (
    "Setiawan", "Santoso", "Prasetyo", "Wibowo", "Susanto", "Hartono", "Purnomo", "Nugroho",
    "Wahyudi", "Kurniawan", "Saputra", "Hidayat", "Raharjo", "Widodo", "Sulistyo", "Handoko",
    "Sasongko", "Pamungkas", "Utomo", "Wicaksono", "Prabowo", "Cahyono", "Hermawan",
    "Wijayanto", "Setyawan", "Suryanto", "Haryanto", "Yulianto", "Subagyo", "Priyanto",
    "Nugraha", "Firmansyah", "Ardiansyah", "Darmawan", "Susilo", "Triyanto",
)
_JAVANESE_FEMALE: Final[tuple[str, ...]] = (
    "Sri", "Dwi", "Tri", "Endang", "Dewi", "Siti", "Rini", "Yuni", "Nur", "Ani", "Ratna",
    "Retno", "Wahyu", "Puji", "Eka", "Indah", "Ayu", "Dian", "Fitri", "Ninik", "Tutik",
    "Woro", "Anik", "Yanti", "Erna", "Diah", "Kartika", "Lusi", "Novita", "Putri", "Rina",
    "Sekar", "Tika", "Umi",
)
_JAVANESE_FEMALE_SECOND: Final[tuple[str, ...]] = (
    "Wahyuni", "Lestari", "Rahayu", "Handayani", "Suryani", "Setyowati", "Purwanti",
    "Susilowati", "Wulandari", "Kusumawati", "Astuti", "Utami", "Mulyani", "Rahmawati",
    "Widayati", "Haryanti", "Prihatin", "Yuliani", "Ningsih", "Sulistyowati", "Fitriani",
    "Pratiwi", "Anggraini", "Puspitasari", "Kurniasih", "Indriyani", "Damayanti", "Safitri",
    "Novitasari", "Permatasari", "Maharani", "Susanti",
)

_SUNDANESE_MALE: Final[tuple[str, ...]] = (
    "Asep", "Ujang", "Cecep", "Dadang", "Yayat", "Dede", "Ade", "Encep", "Aep", "Iwan",
    "Deden", "Wawan", "Ayi", "Jajang", "Acep", "Agus", "Hendi", "Yusuf", "Rahmat", "Dadan",
    "Usep", "Endang", "Iyan", "Tatang", "Ikhsan", "Rizal", "Gugun", "Opik",
)
_SUNDANESE_MALE_SECOND: Final[tuple[str, ...]] = (
    "Saepudin", "Sutisna", "Supriatna", "Sunarya", "Rohman", "Hidayat", "Kurnia", "Permana",
    "Suryana", "Sopandi", "Mulyana", "Gunawan", "Nugraha", "Ruhiyat", "Sobari", "Kusnadi",
    "Firmansyah", "Rustandi", "Suherman", "Setiadi", "Ramdani", "Sumarna", "Maulana",
    "Hermawan", "Sudrajat", "Kosasih", "Somantri", "Wiguna", "Jaelani", "Sukmana",
)
_SUNDANESE_FEMALE: Final[tuple[str, ...]] = (
    "Euis", "Iis", "Neneng", "Nining", "Imas", "Cucu", "Enok", "Eti", "Yeni", "Dewi", "Rina",
    "Lilis", "Yuyun", "Tati", "Ai", "Nia", "Nenden", "Rini", "Siti", "Lina", "Teti", "Ela",
    "Wiwin", "Popon", "Elis", "Ida", "Nunung", "Rita",
)
_SUNDANESE_FEMALE_SECOND: Final[tuple[str, ...]] = (
    "Komariah", "Suryani", "Kurniasih", "Hasanah", "Rohayati", "Nurhayati", "Sumiati",
    "Rosita", "Mulyati", "Nurjanah", "Setiawati", "Sukmawati", "Juwita", "Rahmawati",
    "Maryani", "Aisyah", "Kartika", "Sari", "Rosmiati", "Fauziah", "Herawati", "Rohimah",
    "Nurlaela", "Sopiah", "Kusmiati", "Jubaedah", "Mardiah", "Apriyani",
)

_BATAK_MALE: Final[tuple[str, ...]] = (
    "Hotman", "Maruli", "Jonggi", "Poltak", "Togar", "Sahat", "Binsar", "Parlindungan",
    "Tumpal", "Martua", "Horas", "Bonar", "Gomgom", "Ronald", "Robert", "Johannes",
    "Daniel", "Marihot", "Saut", "Manahan", "Edison", "Hendrik", "Rudolf", "Sabar", "Tigor",
    "Mangasi", "Pardamean", "Lamhot", "Bernhard", "Darwin", "Jefri", "Rianto",
)
_BATAK_FEMALE: Final[tuple[str, ...]] = (
    "Tiurma", "Rosmawati", "Rugun", "Dameria", "Lasma", "Romauli", "Hotmaida", "Sondang",
    "Tiominar", "Lenny", "Erika", "Friska", "Rotua", "Maria", "Ruth", "Debora", "Kristina",
    "Helen", "Sarma", "Nurmaida", "Rosdiana", "Masniari", "Melva", "Roslina", "Tetty",
    "Juliana", "Dumaria", "Hotnida",
)
# Toba, Simalungun and Karo marga (mostly Christian) ...
_BATAK_MARGA_TOBA: Final[tuple[str, ...]] = (
    "Simanjuntak", "Sitompul", "Hutapea", "Pardede", "Sinaga", "Situmorang", "Simatupang",
    "Tambunan", "Panjaitan", "Sihombing", "Manurung", "Silalahi", "Pasaribu", "Simbolon",
    "Hutagalung", "Napitupulu", "Tampubolon", "Sitorus", "Samosir", "Siahaan", "Marpaung",
    "Purba", "Saragih", "Damanik", "Ginting", "Sembiring", "Tarigan", "Sitepu", "Gultom",
    "Sianturi", "Hutabarat", "Lumbantobing", "Nainggolan", "Simamora", "Butarbutar",
)
# ... and Angkola/Mandailing marga (mostly Muslim), so a Muslim Batak gets a
# plausible combination ("Ahmad Fauzi Nasution", not "Ahmad Fauzi Sinaga").
_BATAK_MARGA_MANDAILING: Final[tuple[str, ...]] = (
    "Siregar", "Nasution", "Lubis", "Harahap", "Hasibuan", "Batubara", "Pohan", "Daulay",
    "Rangkuti", "Matondang", "Pulungan", "Parinduri", "Ritonga", "Dalimunthe", "Hutasuhut",
)
BATAK_MARGA: Final[tuple[str, ...]] = _BATAK_MARGA_TOBA + _BATAK_MARGA_MANDAILING

_MINANG_MALE: Final[tuple[str, ...]] = (
    "Afrizal", "Yusrizal", "Zulkifli", "Syafrizal", "Efendi", "Darmawan", "Irwan", "Hendri",
    "Andri", "Rizal", "Fadli", "Erizal", "Jasrial", "Nofrizal", "Desrizal", "Januardi",
    "Firdaus", "Zulfikar", "Dasril", "Masrul", "Yusnaldi", "Syahrial", "Arman", "Asrul",
    "Edwar", "Refki", "Yuliandri", "Gusrizal",
)
_MINANG_FEMALE: Final[tuple[str, ...]] = (
    "Yusnidar", "Desmawati", "Nofriyanti", "Yulianti", "Elfi", "Rosnida", "Asmiati", "Erni",
    "Fitri", "Yenni", "Zulhaidah", "Syafrida", "Mardiana", "Rahmi", "Nelly", "Elvira",
    "Afnidar", "Yusnimar", "Rosmaini", "Misnawati", "Gusnawati", "Yelfi", "Deswita", "Reni",
)
_MINANG_SECOND: Final[tuple[str, ...]] = (
    "Putra", "Syahputra", "Amri", "Anas", "Rahman", "Hamzah", "Yunus", "Saputra", "Hasan",
    "Yusuf", "Ilyas", "Bahar", "Syafei", "Putri", "Yanti", "Sari", "Wati",
)
# Minang suku names occasionally used as a surname.
_MINANG_SUKU: Final[tuple[str, ...]] = (
    "Chaniago", "Piliang", "Tanjung", "Koto", "Sikumbang", "Jambak", "Guci", "Melayu",
)

_BUGIS_MALE: Final[tuple[str, ...]] = (
    "Syamsuddin", "Hasanuddin", "Nurdin", "Arsyad", "Baharuddin", "Jamaluddin", "Muhammad",
    "Abdul", "Ahmad", "Amiruddin", "Syahrir", "Ridwan", "Sulaiman", "Kaharuddin", "Basri",
    "Rusli", "Haris", "Taufik", "Muhlis", "Sudirman", "Ilham", "Asri", "Rahmat", "Akbar",
    "Fadli", "Wahyuddin", "Syarifuddin", "Sapri", "Hamka", "Mappasessu", "Lamappa",
)
_BUGIS_MALE_SECOND: Final[tuple[str, ...]] = (
    "Arsyad", "Ramli", "Saleh", "Amir", "Mustari", "Hamzah", "Mappiasse", "Sulaiman",
    "Rasyid", "Latif", "Makmur", "Bakri", "Tahir", "Sanusi", "Mappatoba", "Palallo", "Rahim",
    "Syukur", "Tamrin", "Lahamuddin",
)
_BUGIS_FEMALE: Final[tuple[str, ...]] = (
    "Nurhayati", "Hasnah", "Rosmini", "Hasnawati", "Sitti", "Nurmiati", "Haslinda",
    "Rahmawati", "Nurjannah", "Suriani", "Kasmawati", "Hamsinah", "Herlina", "Fitriani",
    "Musdalifah", "Irmawati", "Sukmawati", "Darmawati", "Nirwana", "Jumriani", "Asriani",
    "Megawati", "Hikmawati", "Sumarni",
)
_BUGIS_FEMALE_SECOND: Final[tuple[str, ...]] = (
    "Aminah", "Hasnah", "Rahma", "Syamsiah", "Nurbaya", "Aisyah", "Hadijah", "Rasyid",
    "Saleh", "Amir", "Nurdin", "Latif",
)

# Balinese names say the birth order; "I" (men) and "Ni" (women) come first.
_BALINESE_ORDER_MALE: Final[tuple[str, ...]] = (
    "Wayan", "Putu", "Gede", "Made", "Kadek", "Nengah", "Nyoman", "Komang", "Ketut",
)
_BALINESE_ORDER_FEMALE: Final[tuple[str, ...]] = (
    "Wayan", "Putu", "Luh", "Luh Putu", "Made", "Luh Made", "Kadek", "Nyoman", "Komang",
    "Ketut",
)
# Triwangsa (gentry) names replace the plain "I"/"Ni".
_BALINESE_GENTRY_MALE: Final[tuple[str, ...]] = (
    "I Gusti Ngurah", "I Gusti Bagus", "Ida Bagus", "Anak Agung Gde", "Cokorda Gde",
    "I Dewa Gede",
)
_BALINESE_GENTRY_FEMALE: Final[tuple[str, ...]] = (
    "I Gusti Ayu", "Ida Ayu", "Anak Agung Istri", "Desak Made", "Gusti Ayu", "Cokorda Istri",
)
_BALINESE_MALE: Final[tuple[str, ...]] = (
    "Sudarsana", "Suardana", "Wirawan", "Artawan", "Suarjana", "Sukadana", "Darmawan",
    "Budiarta", "Mahendra", "Adi Putra", "Arsana", "Sutama", "Widiana", "Sudiarta",
    "Ariawan", "Suparta", "Merta", "Sudana", "Sumerta", "Astawa", "Wiratama", "Gunawan",
    "Mertayasa", "Sedana", "Pramana", "Suteja", "Swastika", "Dharma Putra",
)
_BALINESE_FEMALE: Final[tuple[str, ...]] = (
    "Ayu Lestari", "Sukerti", "Suartini", "Sumiarti", "Dewi", "Ariani", "Yuliantari",
    "Sulastri", "Mariani", "Widiastuti", "Ratnasari", "Rusmini", "Suciati", "Artini",
    "Kartini", "Sukmawati", "Puspitasari", "Wirastini", "Darmayanti", "Sutarmi", "Astiti",
    "Mertasari", "Antari", "Sudiani", "Ayu Wulandari", "Purnamasari",
)

# Arabic-origin Muslim names, common in every province.
_MUSLIM_MALE: Final[tuple[str, ...]] = (
    "Muhammad", "Ahmad", "Abdul", "Rahmat", "Yusuf", "Ibrahim", "Ismail", "Hasan", "Husein",
    "Fauzi", "Ridwan", "Hidayat", "Syaiful", "Zainal", "Arif", "Ilham", "Hamdan", "Farhan",
    "Rizki", "Fadhil", "Faisal", "Hafiz", "Ali", "Usman", "Umar", "Anwar", "Nasrullah",
    "Amir", "Mahmud", "Ma'ruf", "Zulkarnain", "Lukman", "Syarif", "Khairul", "Mukhlis",
)
_MUSLIM_MALE_SECOND: Final[tuple[str, ...]] = (
    "Fauzi", "Hidayat", "Rahman", "Hakim", "Hasan", "Firmansyah", "Maulana", "Ramadhan",
    "Syahputra", "Abdullah", "Ansori", "Mubarok", "Mustofa", "Iskandar", "Hamzah",
    "Saputra", "Fadillah", "Hanafi", "Rosyid", "Zakaria", "Habibi", "Sholeh", "Munir",
    "Aziz", "Hafidz", "Rasyid", "Khairuddin", "Nurdin", "Syahrial", "Azhari", "Baihaqi",
)
_MUSLIM_FEMALE: Final[tuple[str, ...]] = (
    "Siti", "Nur", "Fatimah", "Aisyah", "Khadijah", "Zainab", "Nurul", "Aminah", "Maryam",
    "Rahma", "Annisa", "Hafsah", "Latifah", "Halimah", "Umi", "Nabila", "Zahra", "Salma",
    "Rohmah", "Laila", "Mutiara", "Ummi", "Syarifah", "Nadia", "Rabiah", "Sofia",
)
_MUSLIM_FEMALE_SECOND: Final[tuple[str, ...]] = (
    "Aisyah", "Nurhasanah", "Hidayah", "Rahmawati", "Azzahra", "Fauziah", "Khairunnisa",
    "Maulida", "Mardhiyah", "Zulaikha", "Aminah", "Jamilah", "Munawaroh", "Rohmah",
    "Solihah", "Humairah", "Faridah", "Nur'aini", "Safitri", "Hamidah", "Marwah", "Zakiyah",
    "Rofiqoh", "Istiqomah", "Barokah", "Hasanah", "Sa'adah",
)

# Christian names of eastern Indonesia (Minahasa, Maluku, Nusa Tenggara
# Timur, Papua, Toraja), where most people carry a family name (fam/marga).
_CHRISTIAN_MALE: Final[tuple[str, ...]] = (
    "Yohanes", "Fransiskus", "Petrus", "Paulus", "Stefanus", "Yosef", "Agustinus", "Markus",
    "Lukas", "Matius", "Simon", "Yakobus", "Antonius", "Dominikus", "Kornelis", "Herman",
    "Frans", "Yulius", "Benediktus", "Aloysius", "Hendrikus", "Marthen", "Yunus", "Daniel",
    "Samuel", "Elias", "Obed", "Zakeus", "Yermias", "Alfons", "Adrianus", "Melkianus",
)
_CHRISTIAN_FEMALE: Final[tuple[str, ...]] = (
    "Maria", "Magdalena", "Theresia", "Yuliana", "Elisabeth", "Kristina", "Yohana",
    "Margaretha", "Agustina", "Veronika", "Anastasia", "Regina", "Fransiska", "Marselina",
    "Yosefina", "Katarina", "Priska", "Debora", "Ester", "Martha", "Ribka", "Susana",
    "Sarlota", "Adolfina", "Naomi", "Yuliance", "Florentina", "Imelda",
)
_EASTERN_FAMILY: Final[tuple[str, ...]] = (
    # Minahasa
    "Wenas", "Lumenta", "Sumampouw", "Pangemanan", "Rumondor", "Kaunang", "Mamahit",
    "Tumbelaka", "Lengkong", "Rondonuwu", "Sondakh", "Wowor", "Karundeng", "Tambuwun", "Supit",
    # Maluku
    "Pattiasina", "Latuheru", "Siahaya", "Tuhumury", "Matulessy", "Lekatompessy", "Huwae",
    "Sahetapy", "Tahapary", "Leatemia",
    # Nusa Tenggara Timur, Flores
    "Lake", "Bria", "Seran", "Nahak", "Tefa", "Benu", "Manafe", "Ndun", "Fanggidae",
    "Dethan", "da Costa", "Fernandez", "Parera", "Koten", "Making",
    # Papua
    "Wenda", "Tabuni", "Kogoya", "Rumbiak", "Mandowen", "Yoku", "Wanimbo", "Karubaba",
    "Kambu", "Ayomi", "Rumbewas", "Wanggai", "Sawaki",
    # Toraja
    "Tandirerung", "Pasolang", "Sampe", "Tangdilintin",
)
# Muslim clans of Maluku and North Maluku, for Muslims in the eastern style.
_EASTERN_MUSLIM_FAMILY: Final[tuple[str, ...]] = (
    "Latuconsina", "Tuasikal", "Ohorella", "Marasabessy", "Tuanaya", "Sangadji", "Umasugi",
    "Wailissa", "Pelu", "Mahulette",
)

# Chinese-Indonesian names: since 1966 most carry an Indonesian-sounding
# surname, often echoing the original clan name (Wijaya, Halim, Salim ...).
_CHINESE_MALE: Final[tuple[str, ...]] = (
    "Budi", "Hendra", "Wilson", "Kevin", "Stefanus", "Hendrik", "Johan", "Sugianto", "Rudy",
    "Tommy", "Andi", "Ferry", "Eddy", "Ricky", "Yohanes", "Jimmy", "Felix", "Vincent",
    "Steven", "Herman", "Lukas", "Agus", "William", "Denny", "Irwan", "Kurniadi",
)
_CHINESE_FEMALE: Final[tuple[str, ...]] = (
    "Lina", "Susan", "Melinda", "Yuliana", "Angelina", "Felicia", "Cindy", "Lily",
    "Meiliana", "Vera", "Jessica", "Linda", "Shinta", "Yenny", "Elisabeth", "Natalia",
    "Stephanie", "Veronica", "Fenny", "Liana", "Agnes", "Sonia", "Hanna", "Meilani",
)
_CHINESE_FAMILY: Final[tuple[str, ...]] = (
    "Wijaya", "Gunawan", "Halim", "Tanuwijaya", "Salim", "Kurniawan", "Santoso", "Hartono",
    "Setiawan", "Sugiarto", "Lukito", "Hadinata", "Susanto", "Widjaja", "Tjahjadi", "Lim",
    "Tan", "Liem", "Sutanto", "Chandra", "Tanjaya", "Wibisono", "Limantara", "Gozali",
    "Hermanto", "Kusuma", "Harsono", "Sanjaya", "Tanoko", "Oei",
)


@dataclass(frozen=True, slots=True)
class NameStyle:
    """One naming tradition: its name pools and how often each pattern occurs.

    Percentages are integers so that choices are exact comparisons on
    integer random bits.
    """

    key: str
    male_given: tuple[str, ...]
    male_second: tuple[str, ...]
    female_given: tuple[str, ...]
    female_second: tuple[str, ...]
    family: tuple[str, ...]
    # Who gets "H."/"Hj." and whose names are Arabic-origin.
    muslim_percent: int
    # People known by one name only.
    mononym_percent: int
    # Of the other names, those ending in an inherited family name.
    family_percent: int
    # Of the other names, those with three parts instead of two.
    three_part_percent: int


STYLES: Final[tuple[NameStyle, ...]] = (
    NameStyle("javanese", _JAVANESE_MALE, _JAVANESE_MALE_SECOND, _JAVANESE_FEMALE,
              _JAVANESE_FEMALE_SECOND, (), 88, 30, 0, 15),
    NameStyle("sundanese", _SUNDANESE_MALE, _SUNDANESE_MALE_SECOND, _SUNDANESE_FEMALE,
              _SUNDANESE_FEMALE_SECOND, (), 97, 12, 0, 10),
    NameStyle("batak", _BATAK_MALE, _BATAK_MALE, _BATAK_FEMALE, _BATAK_FEMALE, BATAK_MARGA,
              30, 0, 95, 25),
    NameStyle("minang", _MINANG_MALE, _MINANG_SECOND, _MINANG_FEMALE, _MINANG_SECOND,
              _MINANG_SUKU, 99, 30, 8, 10),
    NameStyle("bugis", _BUGIS_MALE, _BUGIS_MALE_SECOND, _BUGIS_FEMALE, _BUGIS_FEMALE_SECOND,
              (), 95, 25, 0, 20),
    NameStyle("balinese", _BALINESE_MALE, _BALINESE_MALE, _BALINESE_FEMALE, _BALINESE_FEMALE,
              (), 0, 0, 0, 0),
    NameStyle("muslim", _MUSLIM_MALE, _MUSLIM_MALE_SECOND, _MUSLIM_FEMALE,
              _MUSLIM_FEMALE_SECOND, (), 100, 8, 0, 20),
    NameStyle("christian", _CHRISTIAN_MALE, _CHRISTIAN_MALE, _CHRISTIAN_FEMALE,
              _CHRISTIAN_FEMALE, _EASTERN_FAMILY, 0, 0, 90, 30),
    NameStyle("chinese", _CHINESE_MALE, _CHINESE_MALE, _CHINESE_FEMALE, _CHINESE_FEMALE,
              _CHINESE_FAMILY, 3, 0, 85, 5),
)

MALE_NAMES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(n for s in STYLES for n in s.male_given + s.male_second if " " not in n)
)
FEMALE_NAMES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(n for s in STYLES for n in s.female_given + s.female_second if " " not in n)
)


def style_named(key: str) -> int:
    """Return the index in :data:`STYLES` of the style called ``key``."""
    for index, style in enumerate(STYLES):
        if style.key == key:
            return index
    raise KeyError(key)


def _balinese(female: bool, bits: int) -> str:
    if bits % 100 < 10:
        bits //= 100
        gentry = _BALINESE_GENTRY_FEMALE if female else _BALINESE_GENTRY_MALE
        prefix = gentry[bits % len(gentry)]
        bits //= len(gentry)
    else:
        bits //= 100
        order = _BALINESE_ORDER_FEMALE if female else _BALINESE_ORDER_MALE
        prefix = ("Ni " if female else "I ") + order[bits % len(order)]
        bits //= len(order)
    pool = _BALINESE_FEMALE if female else _BALINESE_MALE
    first = pool[bits % len(pool)]
    bits //= len(pool)
    if bits % 100 < 30:
        bits //= 100
        second = pool[bits % len(pool)]
        if second != first and " " not in second and " " not in first:
            return f"{prefix} {first} {second}"
    return f"{prefix} {first}"


def _batak(female: bool, muslim: bool, bits: int) -> str:
    if muslim:
        pool = _MUSLIM_FEMALE if female else _MUSLIM_MALE
        second_pool = _MUSLIM_FEMALE_SECOND if female else _MUSLIM_MALE_SECOND
        marga_pool = _BATAK_MARGA_MANDAILING
    else:
        pool = _BATAK_FEMALE if female else _BATAK_MALE
        second_pool = pool
        marga_pool = _BATAK_MARGA_TOBA
    parts = [pool[bits % len(pool)]]
    bits //= len(pool)
    if bits % 100 < 30:
        bits //= 100
        middle = second_pool[bits % len(second_pool)]
        bits //= len(second_pool)
        if middle != parts[0]:
            parts.append(middle)
    else:
        bits //= 100
    marga = marga_pool[bits % len(marga_pool)]
    bits //= len(marga_pool)
    # Many Batak women write "br." (boru, daughter of) before their marga.
    if female and bits % 100 < 30:
        parts.append("br.")
    parts.append(marga)
    return " ".join(parts)


def compose_name(style: NameStyle, female: bool, bits: int) -> tuple[str, bool]:
    """Compose a name in ``style`` from the integer ``bits``; also say if Muslim.

    ``bits`` should carry about 48 random bits.  The same arguments always
    give the same name.
    """
    muslim = bits % 100 < style.muslim_percent
    bits //= 100
    if style.key == "balinese":
        return _balinese(female, bits), muslim
    if style.key == "batak":
        return _batak(female, muslim, bits), muslim

    given = style.female_given if female else style.male_given
    second = style.female_second if female else style.male_second
    family = style.family
    if muslim and style.key in ("christian", "chinese"):
        # A Muslim in a mostly Christian community has an Arabic-origin name;
        # in the east also a Muslim clan name (Latuconsina, not Pattiasina).
        given = _MUSLIM_FEMALE if female else _MUSLIM_MALE
        second = _MUSLIM_FEMALE_SECOND if female else _MUSLIM_MALE_SECOND
        if style.key == "christian":
            family = _EASTERN_MUSLIM_FAMILY

    pattern = bits % 100
    bits //= 100
    if pattern < style.mononym_percent:
        if style.key in ("javanese", "sundanese"):
            pool = FEMALE_MONONYMS if female else MALE_MONONYMS
        else:
            pool = second if style.key == "bugis" else given
        name = pool[bits % len(pool)]
        return name, muslim

    first = given[bits % len(given)]
    bits //= len(given)
    parts = [first]
    if bits % 100 < style.three_part_percent:
        bits //= 100
        middle = second[bits % len(second)]
        bits //= len(second)
        if middle != first:
            parts.append(middle)
    else:
        bits //= 100
    if family and bits % 100 < style.family_percent:
        bits //= 100
        parts.append(family[bits % len(family)])
    else:
        bits //= 100
        last = second[bits % len(second)]
        if last not in parts:
            parts.append(last)

    if style.key == "bugis":
        # Bugis-Makassar habits: "Andi" for noble descent, and the
        # abbreviations "Muh." and "St." that registers keep as written.
        bits //= len(second)
        if parts[0] == "Muhammad" and bits % 100 < 50:
            parts[0] = "Muh."
        elif parts[0] == "Sitti" and bits % 100 < 40:
            parts[0] = "St."
        bits //= 100
        if bits % 100 < 15:
            parts.insert(0, "Andi")
    return " ".join(parts), muslim
