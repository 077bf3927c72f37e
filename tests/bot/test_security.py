"""Access-code hashing and the global failure alarm."""

from __future__ import annotations

import logging

import pytest

from bot.security import CodeHasher, FailureAlarm, mask


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


def test_the_alarm_sounds_once_a_minute_when_failures_spike(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    alarm = FailureAlarm(per_minute=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert [alarm.failure() for _ in range(5)] == [False, False, True, False, False]
        now[0] = 61.0
        assert alarm.failure() is False  # the old failures have left the window
        assert [alarm.failure() for _ in range(2)] == [False, True]
    assert sum("ALARM" in r.message for r in caplog.records) == 2


@pytest.mark.parametrize(("value", "masked"), [("+16265550100", "********0100"), ("700000001", "*****0001"),
                                              ("12", "12"), (None, "")])
def test_masking_for_logs(value: str | None, masked: str) -> None:
    assert mask(value) == masked
