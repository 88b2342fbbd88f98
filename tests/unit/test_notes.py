"""C2SP signed notes and cosignatures (exchanged/ledger/notes.py), against the reference
vector of the Go note package (golang.org/x/mod/sumdb/note), which C2SP's signed-note
specification describes: our notes are byte for byte what the ecosystem's tools make."""

from __future__ import annotations

import pytest

from exchanged.errors import CheckFailed
from exchanged.ledger.notes import NoteKey, Verifier, checkpoint_text, parse_note

GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n\N{EM DASH} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAc"
           "ElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()


def test_the_go_reference_note_verifies_and_is_made_byte_for_byte() -> None:
    verifier = Verifier.from_vkey(GO_VKEY)
    assert verifier.verifies(parse_note(GO_NOTE))
    key = NoteKey.load(GO_SKEY.encode())
    assert key.verifier() == verifier and key.verifier().vkey() == GO_VKEY
    assert key.sign_note(GO_TEXT) == GO_NOTE
    assert key.dump().decode().strip() == GO_SKEY


def test_a_changed_note_or_an_unknown_key_is_not_accepted() -> None:
    verifier = Verifier.from_vkey(GO_VKEY)
    changed = parse_note(GO_NOTE.replace(b"answer", b"ANSWER"))
    with pytest.raises(CheckFailed, match="does not verify"):
        verifier.verifies(changed)
    other = NoteKey.generate("PeterNeumann").verifier()  # same name, another key: ignored
    assert not other.verifies(parse_note(GO_NOTE))


def test_cosignatures_verify_accumulate_and_refuse_tampering() -> None:
    log = NoteKey.generate("exchanged.invalid/ledger/test")
    note = parse_note(log.sign_note(checkpoint_text(log.name, 42, bytes(range(32)))))
    assert note.checkpoint().tree_size == 42
    kemensos = NoteKey.generate("kemensos", cosigner=True)
    bkn = NoteKey.generate("bkn", cosigner=True)
    both = note.with_signatures([kemensos.cosign(note.text, timestamp=1_764_800_000),
                                 bkn.cosign(note.text, timestamp=1_764_800_060)])
    again = parse_note(both.render())
    assert log.verifier().verifies(again)
    assert kemensos.verifier().cosigned_at(again) == 1_764_800_000
    assert bkn.verifier().cosigned_at(again) == 1_764_800_060
    # a cosignature of another checkpoint does not verify on this one
    other = parse_note(log.sign_note(checkpoint_text(log.name, 43, bytes(32))))
    moved = note.with_signatures([kemensos.cosign(other.text, timestamp=1)])
    with pytest.raises(CheckFailed, match="does not verify"):
        kemensos.verifier().cosigned_at(moved)
    # the key id commits to the signature type: a note key is no witness key
    assert kemensos.verifier().key_id != Verifier("kemensos", 0x01,
                                                  kemensos.verifier().public).key_id


@pytest.mark.parametrize("bad", [
    b"no signatures\n",
    b"text\n\n- dash name AAAA\n",
    b"text\n\n\xe2\x80\x94 name !!notbase64\n",
    b"te\x01xt\n\n\xe2\x80\x94 name AAAAAAA=\n",
    b"text\n\n\xe2\x80\x94 na me AAAAAAA=\n",
])
def test_malformed_notes_are_refused(bad: bytes) -> None:
    with pytest.raises(CheckFailed):
        parse_note(bad)
