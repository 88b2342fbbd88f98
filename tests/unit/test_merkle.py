"""The Merkle tree against RFC 6962's definition, and its proofs against tampering."""

from __future__ import annotations

import hashlib
import random

import pytest

from exchanged.ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally (recursive)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(70)]


def test_root_matches_the_rfc_definition() -> None:
    assert root([]) == EMPTY_ROOT
    for n in range(1, 70):
        assert root(LEAVES[:n]) == mth(LEAVES[:n]), n


def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not() -> None:
    for n in range(1, 40):
        r = root(LEAVES[:n])
        for i in range(n):
            proof = inclusion_proof(LEAVES[:n], i)
            assert verify_inclusion(LEAVES[i], i, n, proof, r)
            assert not verify_inclusion(LEAVES[(i + 1) % 70], i, n, proof, r)
            if proof:
                bad = list(proof)
                bad[0] = hashlib.sha256(bad[0]).digest()
                assert not verify_inclusion(LEAVES[i], i, n, bad, r)
            assert not verify_inclusion(LEAVES[i], n, n, proof, r)


def test_every_consistency_proof_verifies() -> None:
    for n in range(1, 40):
        rn = root(LEAVES[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES[:n], m)
            assert verify_consistency(m, n, root(LEAVES[:m]), rn, proof), (m, n)


def test_a_rewritten_history_fails_consistency() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(2, 60)
        m = rng.randint(1, n - 1)
        changed = list(LEAVES[:n])
        j = rng.randrange(m)  # rewrite an entry the old tree already held
        changed[j] = leaf_hash(b"forged")
        proof = consistency_proof(changed, m)
        assert not verify_consistency(m, n, root(LEAVES[:m]), root(changed), proof)


@pytest.mark.parametrize("bad", [(0, 5), (6, 5), (-1, 5)])
def test_impossible_sizes(bad: tuple[int, int]) -> None:
    m, n = bad
    assert not verify_consistency(m, n, b"", b"", [b"x"])
