"""Where synthetic people live: provinces, regencies and districts as NIKs encode them, and
the naming traditions of each province."""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from exchanged.testing.synth.instansi import INSTANSI_REGIONAL
from exchanged.testing.synth.mixing import cumulative
from exchanged.testing.synth.names import STYLES, compose_name, style_named

# Regions.  Province codes are the real Kemendagri codes used in NIKs;
# regencies are numbered 01.. and cities 71.., as on real KTPs, with about the
# real number of each; a district count of 8..30 is derived per regency.
# The weights are population in hundred-thousands (2020 census, rounded),
# the styles the naming traditions of the people living there.

_ProvinceRow = tuple[int, int, int, int, tuple[tuple[str, int], ...]]

PROVINCES: Final[tuple[_ProvinceRow, ...]] = (
    # code, weight, kabupaten, kota, naming styles (style, weight)
    (11, 53, 18, 5, (("muslim", 80), ("javanese", 12), ("minang", 4), ("batak", 4))),  # Aceh
    (12, 148, 25, 8, (("batak", 55), ("javanese", 20), ("muslim", 12), ("chinese", 8),
                      ("minang", 5))),  # Sumatera Utara
    (13, 55, 12, 7, (("minang", 85), ("batak", 5), ("javanese", 5), ("muslim", 5))),  # Sumbar
    (14, 64, 10, 2, (("muslim", 40), ("minang", 25), ("javanese", 20), ("batak", 10),
                     ("chinese", 5))),  # Riau
    (15, 35, 9, 2, (("muslim", 45), ("javanese", 30), ("minang", 20), ("batak", 5))),  # Jambi
    (16, 85, 13, 4, (("muslim", 60), ("javanese", 30), ("chinese", 5),
                     ("sundanese", 5))),  # Sumatera Selatan
    (17, 20, 9, 1, (("muslim", 60), ("javanese", 25), ("minang", 15))),  # Bengkulu
    (18, 90, 13, 2, (("javanese", 55), ("muslim", 25), ("sundanese", 10), ("balinese", 5),
                     ("chinese", 5))),  # Lampung
    (19, 15, 6, 1, (("muslim", 60), ("chinese", 30), ("javanese", 10))),  # Bangka Belitung
    (21, 21, 5, 2, (("muslim", 45), ("chinese", 20), ("batak", 15), ("javanese", 10),
                    ("minang", 10))),  # Kepulauan Riau
    (31, 106, 1, 5, (("javanese", 30), ("muslim", 25), ("sundanese", 15), ("batak", 10),
                     ("chinese", 10), ("christian", 5), ("minang", 5))),  # DKI Jakarta
    (32, 483, 18, 9, (("sundanese", 75), ("javanese", 15), ("muslim", 10))),  # Jawa Barat
    (33, 365, 29, 6, (("javanese", 90), ("muslim", 7), ("chinese", 3))),  # Jawa Tengah
    (34, 37, 4, 1, (("javanese", 90), ("muslim", 5), ("christian", 5))),  # DI Yogyakarta
    (35, 410, 29, 9, (("javanese", 80), ("muslim", 15), ("chinese", 5))),  # Jawa Timur
    (36, 119, 4, 4, (("sundanese", 50), ("muslim", 30), ("javanese", 20))),  # Banten
    (51, 43, 8, 1, (("balinese", 85), ("javanese", 10), ("muslim", 5))),  # Bali
    (52, 53, 8, 2, (("muslim", 85), ("balinese", 10), ("javanese", 5))),  # NTB
    (53, 53, 21, 1, (("christian", 85), ("muslim", 10), ("javanese", 5))),  # NTT
    (61, 54, 12, 2, (("muslim", 40), ("christian", 25), ("chinese", 20),
                     ("javanese", 15))),  # Kalimantan Barat
    (62, 27, 13, 1, (("muslim", 40), ("christian", 30), ("javanese", 30))),  # Kalteng
    (63, 41, 11, 2, (("muslim", 80), ("javanese", 20))),  # Kalimantan Selatan
    (64, 38, 7, 3, (("muslim", 35), ("javanese", 30), ("bugis", 25),
                    ("christian", 10))),  # Kalimantan Timur
    (65, 7, 4, 1, (("bugis", 35), ("muslim", 35), ("christian", 20),
                   ("javanese", 10))),  # Kalimantan Utara
    (71, 26, 11, 4, (("christian", 80), ("muslim", 15), ("chinese", 5))),  # Sulawesi Utara
    (72, 30, 12, 1, (("muslim", 50), ("bugis", 30), ("christian", 20))),  # Sulawesi Tengah
    (73, 91, 21, 3, (("bugis", 80), ("muslim", 10), ("christian", 10))),  # Sulawesi Selatan
    (74, 26, 15, 2, (("muslim", 50), ("bugis", 40), ("javanese", 10))),  # Sulawesi Tenggara
    (75, 12, 5, 1, (("muslim", 90), ("bugis", 10))),  # Gorontalo
    (76, 14, 6, 0, (("bugis", 60), ("muslim", 40))),  # Sulawesi Barat
    (81, 18, 9, 2, (("christian", 55), ("muslim", 45))),  # Maluku
    (82, 13, 8, 2, (("muslim", 75), ("christian", 25))),  # Maluku Utara
    # Papua: NIKs keep the code they were issued with, so the pre-2022 codes
    # (91 Papua Barat, 94 Papua) and the 2022 code 92 all occur.
    (91, 11, 12, 1, (("christian", 70), ("muslim", 15), ("javanese", 10), ("bugis", 5))),
    (92, 6, 7, 0, (("christian", 75), ("muslim", 15), ("bugis", 10))),
    (94, 43, 28, 1, (("christian", 80), ("javanese", 10), ("bugis", 5), ("muslim", 5))),
)


_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(100))
_PROV_CUM: Final = cumulative(p[1] for p in PROVINCES)
_PROV_TOTAL: Final = _PROV_CUM[-1]


def _regencies(code: int, kabupaten: int, kota: int) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for reg in [*range(1, kabupaten + 1), *range(71, 71 + kota)]:
        code4 = f"{code:02d}{reg:02d}"
        # Knuth's multiplicative hash: a fixed, varied district count per
        # regency without another table.
        districts = 8 + (int(code4) * 2654435761 >> 7) % 23
        out.append((code4, districts))
    return tuple(out)


_PROV_REGENCIES: Final = tuple(_regencies(p[0], p[2], p[3]) for p in PROVINCES)
_PROV_STYLE_CUM: Final = tuple(cumulative(w for _, w in p[4]) for p in PROVINCES)
_PROV_STYLE_IDS: Final = tuple(tuple(style_named(s) for s, _ in p[4]) for p in PROVINCES)


def pick_region(x: int) -> tuple[str, int, int]:
    """Pick (six-digit region code, province index, unused bits) from ``x``."""
    p = bisect_right(_PROV_CUM, x % _PROV_TOTAL)
    x //= _PROV_TOTAL
    regencies = _PROV_REGENCIES[p]
    code4, districts = regencies[x % len(regencies)]
    x //= len(regencies)
    district = 1 + x % districts
    return code4 + _TWO_DIGITS[district], p, x // districts


def province_name(province: int, female: bool, x: int) -> tuple[str, bool]:
    """A name typical of the province; also whether the person is Muslim."""
    cum = _PROV_STYLE_CUM[province]
    s = bisect_right(cum, x % cum[-1])
    return compose_name(STYLES[_PROV_STYLE_IDS[province][s]], female, x // cum[-1])


# Regional instansi by province index (empty where none is listed).
REGIONAL_BY_PROVINCE: Final = tuple(
    tuple(name for code, name in INSTANSI_REGIONAL if code == p[0]) for p in PROVINCES
)
