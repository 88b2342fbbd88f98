"""Indonesian name normalisation (exchanged.matching.names)."""

from __future__ import annotations

import pytest

from exchanged.matching.names import NameNormaliser, canonical_part, joined_key, normalise_name


@pytest.mark.parametrize(("written", "key"), [
    # titles before and degrees after, with and without dots and commas
    ("Dr. H. Ahmad Fauzi, S.Pd., M.Si.", ("ahmad", "fauzi")),
    ("Drs. Agus Setiawan", ("agus", "setiawan")),
    ("Dra. Hj. Sri Wahyuni, M.Pd.", ("sri", "wahyuni")),
    ("Prof. Dr. Ir. Bambang Wibowo, M.T.", ("bambang", "wibowo")),
    ("dr. Ayu Lestari, Sp.A.", ("ayu", "lestari")),
    ("Ahmad Fauzi SE", ("ahmad", "fauzi")),
    ("Ahmad Fauzi S.Pd.I", ("ahmad", "fauzi")),
    ("Ahmad Fauzi,S.Sos,MM", ("ahmad", "fauzi")),
    ("Ahmad Fauzi, A.Md.Kep.", ("ahmad", "fauzi")),
    ("Drs.H.Sutrisno", ("sutrisno",)),
    ("K.H. Abdul Hamid", ("abdul", "hamid")),
    ("Ny. Sumarni", ("sumarni",)),
    # Muhammad in every form, M. only as the first part
    ("Muhammad Yusuf", ("muhamad", "yusuf")),
    ("Muhamad Yusuf", ("muhamad", "yusuf")),
    ("Mohammad Yusuf", ("muhamad", "yusuf")),
    ("Mochammad Yusuf", ("muhamad", "yusuf")),
    ("Moh. Yusuf", ("muhamad", "yusuf")),
    ("Mhd. Yusuf", ("muhamad", "yusuf")),
    ("Muh. Yusuf", ("muhamad", "yusuf")),
    ("M. Yusuf", ("muhamad", "yusuf")),
    ("M.Yusuf", ("muhamad", "yusuf")),
    ("Ahmad M. Yusuf", ("ahmad", "m", "yusuf")),
    # Abdul, Nur, old spelling, Arabic transliterations
    ("Abd. Rahman", ("abdul", "rahman")),
    ("Abdurrahman", ("abdul", "rahman")),
    ("Abdul Rachman", ("abdul", "rahman")),
    ("Abdullah", ("abdulah",)),
    ("Noer Hayati", ("nur", "hayati")),
    ("Soeharto", ("suharto",)),
    ("Djoko Tjahjono", ("yoko", "cahyono")),
    ("Joko Cahyono", ("yoko", "cahyono")),
    ("Chairul Anwar", ("hairul", "anwar")),
    ("Khairul Anwar", ("hairul", "anwar")),
    ("Ramadhan", ("ramadan",)),
    ("Rizky", ("rizki",)),
    ("Sitti Aminah", ("siti", "aminah")),
    ("St. Aminah", ("siti", "aminah")),
    # spacing, case, punctuation, accents, compatibility forms
    ("  SITI   AMINAH  ", ("siti", "aminah")),
    ("siti-aminah", ("siti", "aminah")),
    ("Ma'ruf Amin", ("maruf", "amin")),
    ("Ma\u2019ruf Amin", ("maruf", "amin")),
    ("S\u00edti Am\u00ednah", ("siti", "aminah")),
    ("\uff33\uff49\uff54\uff49", ("siti",)),
    # connectors some records leave out
    ("Rosmawati br. Sitompul", ("rosmawati", "sitompul")),
    ("Ahmad bin Yusuf", ("ahmad", "yusuf")),
    ("I Wayan Sudarsana", ("wayan", "sudarsana")),
    ("Ni Luh Putu Ayu", ("luh", "putu", "ayu")),
    # initials stay, one letter each
    ("A. Setiawan", ("a", "setiawan")),
    # nothing left
    ("", ()),
    ("Dr. H.", ()),
])
def test_normalise(written: str, key: tuple[str, ...]) -> None:
    assert normalise_name(written) == key


def test_variants_of_one_name_meet() -> None:
    forms = ["Drs. H. Mochammad Soeharto, M.Si.", "MUHAMAD SUHARTO", "Moh. Suharto",
             "M. Soeharto", "muhammad  suharto"]
    assert len({normalise_name(f) for f in forms}) == 1


def test_different_names_stay_apart() -> None:
    pairs = [("Siti Aminah", "Siti Aisyah"), ("Putra", "Putri"), ("Wahyuni", "Wahyudi"),
             ("Agus Setiawan", "Agus Setiawan Putra"), ("Ahmad", "Achmadi")]
    for a, b in pairs:
        assert normalise_name(a) != normalise_name(b), (a, b)


def test_st_is_sitti_first_and_a_degree_after() -> None:
    assert normalise_name("St. Aminah") == ("siti", "aminah")
    assert normalise_name("Aminah, S.T.") == ("aminah",)


def test_canonical_part_is_stable() -> None:
    for part in ("muhammad", "soeharto", "abdurrahman", "nurhayati", "tjahjadi"):
        keys = canonical_part(part)
        assert tuple(k for key in keys for k in canonical_part(key)) == keys


def test_joined_key_is_the_key_of_the_part_written_as_one() -> None:
    assert joined_key("nur", "hayati") == normalise_name("Nurhayati")[0]
    assert joined_key("tika", "astuti") == normalise_name("Tikaastuti")[0]


def test_normaliser_caches_are_its_own_and_bounded() -> None:
    first, second = NameNormaliser(max_entries=3), NameNormaliser(max_entries=3)
    names = [f"Nama Ke{i}" for i in range(10)]
    assert [first(n) for n in names] == [normalise_name(n) for n in names]
    assert len(first._cache) <= 3 and len(first._parts) <= 3
    assert not second._cache
