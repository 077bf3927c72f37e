"""Access-code hashing and the global failure alarm."""

from __future__ import annotations

import logging

import pytest

from bot.security import CodeChecks, CodeHasher, Cost, FailureAlarm, NeedsCheck, mask


def test_a_hash_verifies_its_code_and_nothing_else() -> None:
    hasher = CodeHasher(b"pepper", 2**10)
    stored = hasher.hash("482913")
    assert stored.startswith("scrypt$10$8$1$") and "482913" not in stored
    assert hasher.verify("482913", stored)
    assert not hasher.verify("482914", stored)
    assert not hasher.verify("", stored)


def test_the_same_code_hashes_differently_each_time() -> None:
    hasher = CodeHasher(b"pepper", 2**4)
    assert hasher.hash("x") != hasher.hash("x")


def test_without_the_pepper_a_hash_is_useless() -> None:
    stored = CodeHasher(b"pepper", 2**4).hash("482913")
    assert not CodeHasher(b"other", 2**4).verify("482913", stored)


def test_old_hashes_verify_after_the_cost_is_raised() -> None:
    stored = CodeHasher(b"pepper", 2**4).hash("482913")
    assert CodeHasher(b"pepper", 2**12).verify("482913", stored)


@pytest.mark.parametrize("stored", ["", "plain", "md5$x$y", "scrypt$x$8$1$AA==$AA==", "scrypt$4$8$1$!!$!!"])
def test_unreadable_hashes_never_verify(stored: str) -> None:
    assert not CodeHasher(b"pepper", 2**4).verify("x", stored)


def test_an_unknown_account_costs_a_hash_too() -> None:
    import time

    hasher = CodeHasher(b"pepper", 2**12)
    stored = hasher.hash("482913")
    t0 = time.perf_counter()
    for _ in range(5):
        hasher.verify("000000", None)
    unknown = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(5):
        hasher.verify("000000", stored)
    wrong = time.perf_counter() - t0
    assert unknown > wrong / 3


def test_checks_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the standard library's, watched, not replaced
    hasher = CodeHasher(b"pepper", 2**4)
    stored = hasher.hash("482913")
    assert hasher.verify("482913", stored) and not hasher.verify("482914", stored)
    assert len(compared) == 2


def test_unknown_accounts_cost_what_most_stored_hashes_cost() -> None:
    old = CodeHasher(b"pepper", 2**10)
    stored = [old.hash(str(i)) for i in range(5)] + [CodeHasher(b"pepper", 2**12).hash("x")]
    raised = CodeHasher(b"pepper", 2**12)  # OUTAGEBOT_SCRYPT_N raised after an import at 2**10
    assert raised.unknown_cost == Cost(2**12)
    assert raised.calibrate([*stored, "garbage"]) == Cost(2**10)
    assert raised.calibrate([]) == Cost(2**12)


def test_with_the_cost_raised_an_unknown_account_takes_as_long_as_a_known_one() -> None:
    import statistics
    import time

    stored = CodeHasher(b"pepper", 2**12).hash("482913")
    raised = CodeHasher(b"pepper", 2**14)
    raised.calibrate([stored])

    def timed(candidate: str | None) -> float:
        runs = []
        for _ in range(7):
            started = time.perf_counter()
            raised.check("000000", candidate)
            runs.append(time.perf_counter() - started)
        return statistics.median(runs)

    known, unknown = timed(stored), timed(None)
    assert 0.6 < unknown / known < 1.6, (known, unknown)


def test_a_code_stored_at_an_old_cost_is_rehashed_when_it_verifies() -> None:
    stored = CodeHasher(b"pepper", 2**4).hash("482913")
    raised = CodeHasher(b"pepper", 2**6)
    check = raised.check("482913", stored)
    assert check.matches and check.rehash is not None and check.rehash.startswith("scrypt$6$8$1$")
    assert raised.verify("482913", check.rehash)
    assert raised.check("000000", stored).rehash is None  # never for a wrong code
    assert raised.check("482913", check.rehash).rehash is None  # nor at today's cost


def test_a_check_made_ahead_is_used_only_for_the_same_code_and_stored_hash() -> None:
    hasher = CodeHasher(b"pepper", 2**4)
    first, second = hasher.hash("482913"), hasher.hash("111111")
    checks = CodeChecks(hasher)
    checks.add("482913", first)
    assert checks.verify("482913", first).matches
    with pytest.raises(NeedsCheck):
        checks.verify("482913", second)  # the stored hash changed in between (a new code was imported)
    with pytest.raises(NeedsCheck):
        checks.verify("111111", first)


def test_the_alarm_sounds_once_a_minute_when_failures_spike(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    alarm = FailureAlarm(per_minute=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert [alarm.failure() for _ in range(5)] == [False, False, True, False, False]
        now[0] = 61.0
        assert alarm.failure() is False  # the old failures have left the window
        assert [alarm.failure() for _ in range(2)] == [False, True]
    assert sum("ALARM" in r.message for r in caplog.records) == 2


@pytest.mark.parametrize(
    ("value", "masked"), [("+16265550100", "********0100"), ("700000001", "*****0001"), ("12", "12"), (None, "")]
)
def test_masking_for_logs(value: str | None, masked: str) -> None:
    assert mask(value) == masked
