"""Hand-made mutations of the security- and correctness-critical lines, and the tests that must kill them.

Each mutant breaks one promise the code makes (a lock, a check, a limit, a retry). The script copies
the working tree, applies one mutant at a time and runs the tests named for it; a mutant survives
when they all pass, which means those lines are not really tested. Run it after changing any of
these lines: ``python -m tests.mutants`` (all) or ``python -m tests.mutants lockout-row-lock ...``.
Exit status 0 only when every mutant is killed and every mutated line still exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """One mutation: in ``path`` replace ``before`` (which must occur exactly once) by ``after``."""

    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


CHANGES = "tests/bot/test_changes.py"
FAULTS = "tests/bot/test_faults.py"
WEB = "tests/bot/test_web.py"
OUTBOX = "tests/bot/test_outbox.py"
DISPATCH = "tests/bot/test_dispatch.py"
TYPING = "tests/bot/test_typing.py"
VERIFY = "tests/bot/test_verify.py"
TG = "tests/bot/test_telegram.py"
TG_WEBHOOK = "tests/bot/test_telegram_webhook.py"
TG_ATTACKS = "tests/bot/test_telegram_attacks.py"
TG_ATTACKS_2 = "tests/bot/test_telegram_attacks_2.py"

MUTANTS = (
    Mutant(
        "verified-guard",
        "dialogs/engine.py",
        "        if state.verified and not session.verified:\n            session.slots.clear()",
        "        if False:\n            session.slots.clear()",
        (f"{CHANGES}::test_a_state_that_needs_verification_is_never_run_without_it",),
    ),
    Mutant(
        "verified-guard-in-place",
        "dialogs/engine.py",
        "if state.verified and not session.verified:  # e.g.",
        "if False:  # e.g.",
        (f"{CHANGES}::test_a_state_that_needs_verification_is_never_run_without_it",),
    ),
    Mutant(
        "no-saves-on-edit",
        "dialogs/contacts.py",
        "def _edit_confirm(turn: Turn, yes: bool) -> str:\n    if not yes:",
        "def _edit_confirm(turn: Turn, yes: bool) -> str:\n    if False:",
        (f"{CHANGES}::test_answering_no_at_the_read_back_changes_nothing",),
    ),
    Mutant(
        "no-saves-on-accounts",
        "dialogs/contacts.py",
        '    """Confirm step shared by \'add to more accounts\' and \'remove from accounts\'."""\n    if not yes:',
        '    """Confirm step shared."""\n    if False:',
        (f"{CHANGES}::test_answering_no_at_the_read_back_changes_nothing",),
    ),
    Mutant(
        "no-saves-on-all",
        "dialogs/contacts.py",
        "def _all_confirm(turn: Turn, yes: bool) -> str:\n    if not yes:",
        "def _all_confirm(turn: Turn, yes: bool) -> str:\n    if False:",
        (f"{CHANGES}::test_answering_no_at_the_read_back_changes_nothing",),
    ),
    Mutant(
        "own-accounts",
        "bot/storage/accounts.py",
        "return sorted({i for i in ids if i in mine})",
        "return sorted(set(ids))",
        (
            f"{CHANGES}::test_service_accounts_of_another_customer_are_never_assigned",
            "tests/bot/storage/test_accounts.py",
        ),
    ),
    Mutant(
        "own-contacts",
        "bot/storage/accounts.py",
        "return {c.id: c for c in self.contacts(customer_id) if c.id in wanted}",
        "return {i: ContactView(i, '', None, None, 'en', frozenset()) for i in wanted}",
        ("tests/bot/storage/test_accounts.py",),
    ),
    Mutant(
        "edit-scope",
        "bot/storage/accounts.py",
        ".where(_co.c.id == contact_id, _co.c.customer_id == customer_id, column.is_not_distinct_from(old))",
        ".where(_co.c.id == contact_id, column.is_not_distinct_from(old))",
        (
            f"{CHANGES}::test_contacts_of_another_customer_are_never_edited_or_unassigned",
            "tests/bot/storage/test_accounts.py",
        ),
    ),
    Mutant(
        "compare-and-set",
        "bot/storage/accounts.py",
        ".where(_co.c.id == contact_id, _co.c.customer_id == customer_id, column.is_not_distinct_from(old))",
        ".where(_co.c.id == contact_id, _co.c.customer_id == customer_id)",
        (f"{CHANGES}::test_a_value_saved_meanwhile_by_another_phone_is_not_overwritten",),
    ),
    Mutant(
        "duplicate-at-save",
        "bot/storage/accounts.py",
        '_NEW_CONTACT = InsertIgnoring(\n    _co,\n    ["customer_id", "phone"],',
        '_NEW_CONTACT = InsertIgnoring(\n    _co,\n    ["id"],',
        (
            f"{CHANGES}::test_a_number_saved_by_another_phone_meanwhile_gets_the_duplicate_answer",
            f"{FAULTS}::test_racing_adds_of_one_number_save_it_once_and_tell_the_others_whose_it_is",
        ),
    ),
    Mutant(
        "duplicate-on-edit",
        "bot/storage/accounts.py",
        "        except IntegrityError:\n            return ChangeResult(Outcome.DUPLICATE",
        "        except KeyError:\n            return ChangeResult(Outcome.DUPLICATE",
        (f"{CHANGES}::test_an_edit_to_a_number_saved_meanwhile_gets_the_duplicate_answer",),
    ),
    Mutant(
        "constant-time",
        "bot/security.py",
        "matches = hmac.compare_digest(actual, expected)",
        "matches = actual == expected",
        ("tests/bot/test_security.py::test_checks_are_compared_in_constant_time",),
    ),
    Mutant(
        "checks-keyed-by-hash",
        "bot/security.py",
        "known = self._known.get((code, stored))",
        "known = next((v for (c, _s), v in self._known.items() if c == code), None)",
        ("tests/bot/test_security.py::test_a_check_made_ahead_is_used_only_for_the_same_code_and_stored_hash",),
    ),
    Mutant(
        "hash-in-the-turn",
        "bot/security.py",
        "        if known is None:\n            raise NeedsCheck(code, stored)",
        "        if known is None:\n            return self.hasher.check(code, stored)",
        (
            "tests/bot/test_concurrency.py::test_on_sqlite_a_slow_code_check_does_not_hold_up_other_conversations",
            f"{FAULTS}::test_thirty_code_checks_at_production_cost_hold_up_no_one_else",
        ),
    ),
    Mutant(
        "unknown-cost",
        "bot/security.py",
        "self.unknown_cost = costs.most_common(1)[0][0] if costs else self.cost",
        "self.unknown_cost = self.cost",
        ("tests/bot/test_security.py::test_unknown_accounts_cost_what_most_stored_hashes_cost",),
    ),
    Mutant(
        "rehash",
        "bot/security.py",
        "return Check(matches, self.hash(code) if matches and cost != self.cost else None)",
        "return Check(matches, None)",
        ("tests/bot/test_security.py::test_a_code_stored_at_an_old_cost_is_rehashed_when_it_verifies",),
    ),
    Mutant(
        "lockout-row-lock",
        "bot/storage/accounts.py",
        "read = _CUSTOMER_FOR_UPDATE if self.postgres else _CUSTOMER",
        "read = _CUSTOMER",
        (f"{FAULTS}::test_thirty_phones_guessing_at_once_get_exactly_five_checks",),
    ),
    Mutant(
        "lockout-signs-out",
        "bot/storage/accounts.py",
        "failed, lock_until, version = 0, self.now + policy.account_lock, version + 1",
        "failed, lock_until = 0, self.now + policy.account_lock",
        ("tests/bot/test_sessions.py::test_a_lockout_signs_out_the_sessions_verified_on_that_account",),
    ),
    Mutant(
        "revocation",
        "bot/conversation.py",
        "revoked=stored.revoked, locale_chosen",
        "revoked=False, locale_chosen",
        ("tests/bot/test_sessions.py::test_support_revokes_every_session_of_a_customer_at_its_next_message",),
    ),
    Mutant(
        "contact-limit",
        "bot/storage/accounts.py",
        "if count is not None and count[0] >= self.limits.max_contacts:",
        "if False:",
        (f"{CHANGES}::test_the_contact_limit_holds_for_a_read_back_confirmed_after_the_limit_was_reached",),
    ),
    Mutant(
        "notice-limit",
        "bot/storage/accounts.py",
        "return (sent[0] if sent else 0) < self.limits.notices_per_hour",
        "return True",
        (f"{CHANGES}::test_new_numbers_texted_per_hour_are_limited_edits_included",),
    ),
    Mutant(
        "regions",
        "dialogs/fields.py",
        "if phonenumbers.region_code_for_number(number) not in allowed:",
        "if False:",
        (f"{CHANGES}::test_numbers_abroad_are_refused_in_the_customers_language",),
    ),
    Mutant(
        "changed-number-notice",
        "bot/storage/accounts.py",
        "            self._notify(customer_id, new, stored[0],",
        "            (lambda *a: None)(customer_id, new, stored[0],",
        (f"{CHANGES}::test_a_changed_number_gets_the_opt_in_notice_in_the_contacts_language",),
    ),
    Mutant(
        "no-retry",
        "bot/conversation.py",
        "    if isinstance(exc, LostUpdate):\n        return True",
        "    return False",
        (
            "tests/bot/test_retries.py::test_a_deadlock_victim_is_run_again_and_succeeds",
            "tests/bot/test_retries.py::test_a_connection_killed_between_turns_is_replaced_without_an_apology",
        ),
    ),
    Mutant(
        "disconnect-invalidates",
        "bot/storage/prepared.py",
        "    if dialect.is_disconnect(exc, raw, None):",
        "    if False:",
        ("tests/bot/test_retries.py::test_a_connection_killed_between_turns_is_replaced_without_an_apology",),
    ),
    Mutant(
        "suspect-connections",
        "bot/storage/db.py",
        "            return bool(conn.info.get(_LOSSES_SEEN, 0) < self._losses)",
        "            return False",
        (f"{FAULTS}::test_after_every_connection_is_killed_no_customer_gets_the_apology",),
    ),
    Mutant(
        "metrics-add-up",
        "bot/cli.py",
        'os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", shared)',
        "pass",
        ("tests/bot/test_metrics.py::test_several_workers_add_up_whichever_answers_the_scrape",),
    ),
    Mutant(
        "session-version-check",
        "bot/storage/sessions.py",
        '.where(_t.c.id == bindparam("b_id"), _t.c.version == bindparam("b_version"))',
        '.where(_t.c.id == bindparam("b_id"))',
        ("tests/bot/test_concurrency.py::test_many_turns_from_many_threads_are_all_counted",),
    ),
    Mutant(
        "read-only-turns",
        "bot/storage/accounts.py",
        "        if self.read_only:\n            raise NeedsTransaction",
        "        if False:\n            raise NeedsTransaction",
        (
            "tests/bot/storage/test_accounts.py::test_a_read_only_repository_refuses_every_write_before_it_touches_anything",
            f"{FAULTS}::test_thirty_phones_guessing_at_once_get_exactly_five_checks",
        ),
    ),
    Mutant(
        "import-all-or-nothing",
        "bot/importer.py",
        '            step("customers", len(customers), len(customers))',
        '            conn.commit()\n            step("customers", len(customers), len(customers))',
        ("tests/bot/test_importer.py::test_a_write_refused_late_leaves_nothing_of_the_file",),
    ),
    Mutant(
        "signature-query",
        "bot/web.py",
        'url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")',
        "url = base + request.url.path",
        (f"{WEB}::test_the_signature_covers_the_query_string_of_the_configured_url",),
    ),
    Mutant(
        "streamed-limit",
        "bot/web.py",
        "        if size > limit:\n            raise BodyTooLarge",
        "        if False:\n            raise BodyTooLarge",
        (f"{WEB}::test_a_streamed_body_over_the_limit_is_cut_off",),
    ),
    Mutant(
        "declared-limit",
        "bot/web.py",
        "if declared.isascii() and declared.isdigit() and int(declared) > limit:",
        "if False:",
        (f"{WEB}::test_a_declared_body_over_the_limit_is_refused_without_reading_it",),
    ),
    Mutant(
        "dispatch-skip-locked",
        "bot/dispatch.py",
        "due = due.with_for_update(skip_locked=True)",
        "pass",
        (f"{OUTBOX}::test_two_senders_at_once_send_each_notice_once",),
    ),
    Mutant(
        "dispatch-attempt-limit",
        "bot/dispatch.py",
        "if job.attempts >= limit:",
        "if False:",
        (f"{DISPATCH}::test_a_transient_failure_is_retried_with_backoff_then_fails_with_its_reason",),
    ),
    Mutant(
        "dispatch-cancelled-in-flight",
        "bot/dispatch.py",
        "            if job.id not in live:\n                continue",
        "            if False:\n                continue",
        (f"{DISPATCH}::test_a_delivery_cancelled_after_its_claim_is_not_sent",),
    ),
    Mutant(
        "dispatch-optout-since",
        "bot/dispatch.py",
        'elif channel == "sms" and job.address in blocked:',
        "elif False:",
        (f"{DISPATCH}::test_an_opted_out_number_is_left_out_and_one_that_opts_out_later_is_not_sent_to",),
    ),
    Mutant(
        "dispatch-no-fallback",
        "bot/dispatch.py",
        "                if job.fallback:  # by SMS instead, at once",
        "                if False:",
        (f"{DISPATCH}::test_a_linked_contact_gets_telegram_and_falls_back_to_sms_when_the_bot_is_blocked",),
    ),
    Mutant(
        "plan-optouts",
        "bot/storage/alerts.py",
        ".having(or_(chat.is_not(None), not_(sms_opted_out)))",
        "",
        (f"{DISPATCH}::test_an_opted_out_number_is_left_out_and_one_that_opts_out_later_is_not_sent_to",),
    ),
    Mutant(
        "follow-up-reached-only",
        "bot/storage/alerts.py",
        "        _m.c.status.in_(REACHED),",
        "",
        (f"{DISPATCH}::test_restored_goes_to_exactly_those_the_outage_alert_reached",),
    ),
    Mutant(
        "pacing-overlap",
        "bot/storage/pacing.py",
        'set_={"next_at": later(_p.c.next_at, now) + seconds}',
        'set_={"next_at": now + seconds}',
        (f"{DISPATCH}::test_reservations_from_many_workers_at_once_never_overlap",),
    ),
    Mutant(
        "outbox-retry-for-a-day",
        "bot/outbox.py",
        "MAX_ATTEMPTS = 500",
        "MAX_ATTEMPTS = 8",
        (f"{OUTBOX}::test_while_twilio_is_away_a_notice_is_retried_for_a_day_then_expires",),
    ),
    Mutant(
        "status-21610",
        "bot/outbox.py",
        "        if error_code == 21610:",
        "        if False:",
        (f"{WEB}::test_a_status_callback_saying_21610_records_the_opt_out",),
    ),
    Mutant(
        "opted-out-answers-nothing",
        "bot/conversation.py",
        "        if stored.opted_out is not None and (keyword is None or keyword.kind is KeywordKind.HELP):",
        "        if False:",
        (
            f"{WEB}::test_after_our_own_opt_out_word_only_one_reminder_answers_until_bat_dau",
            f"{WEB}::test_after_twilios_own_opt_out_word_nothing_is_answered_not_even_help",
        ),
    ),
    Mutant(
        "opt-in-reminder-once",
        "bot/conversation.py",
        "(keyword is not None or held.reminded_at is None)",
        "(keyword is not None or True)",
        (f"{WEB}::test_the_one_reminder_holds_across_a_restart_and_a_new_opt_out_brings_a_new_one",),
    ),
    Mutant(
        "opted-out-replay-without-session",
        "bot/conversation.py",
        "        if stored.id is None and inbound.external_id:  # no session row carried the replay check",
        "        if False:",
        (f"{WEB}::test_an_opted_out_number_without_a_conversation_gets_no_session_and_the_same_answer_on_replays",),
    ),
    Mutant(
        "provider-blocks-after-our-word",
        "bot/storage/optouts.py",
        "    if provider_blocks:\n        _PROVIDER_BLOCKS.execute(conn, params)",
        "    if False:\n        _PROVIDER_BLOCKS.execute(conn, params)",
        (f"{WEB}::test_twilios_stop_after_our_word_leaves_the_number_to_twilio",),
    ),
    Mutant(
        "help-question-within-segments",
        "bot/conversation.py",
        'if count_segments("\\n".join(render(reply))).count <= HELP_SEGMENTS:',
        "if True:",
        (f"{WEB}::test_help_names_the_utility_and_says_how_to_go_on_within_two_segments",),
    ),
    Mutant(
        "sms-body-limit",
        "bot/channels/sms.py",
        "    if _units(text) > MAX_BODY:",
        "    if False:",
        ("tests/bot/channels/test_sms.py::test_a_body_over_the_limit_is_cut_at_a_line_end_and_logged_with_its_state",),
    ),
    Mutant(
        "pepper-required",
        "bot/config.py",
        "        if path is None:\n            raise ConfigError(",
        "        if path is None:\n            return b'default', None\n            raise ConfigError(",
        ("tests/bot/test_cli.py::test_serve_and_import_refuse_to_start_without_a_pepper",),
    ),
    # the conversation as people type it
    Mutant(
        "own-choice-first",
        "dialogs/engine.py",
        "own = self._own_choice(turn, state, words)  # a state's own choices",
        "own = None  # a state's own choices",
        (f"{TYPING}::test_a_states_own_choice_wins_over_the_language_switch",),
    ),
    Mutant(
        "no-code-words-are-not-codes",
        "dialogs/verify.py",
        "    if sentence or any(word in _NO_CODE_STEMS for word in words):",
        "    if False:",
        (
            f"{VERIFY}::test_words_that_say_there_is_no_code_get_help_and_never_count_toward_the_lockout",
            f"{TYPING}::test_a_sentence_at_the_access_code_gets_help_and_is_never_checked_as_a_code",
        ),
    ),
    Mutant(
        "code-particles-trimmed",
        "dialogs/verify.py",
        'bare = "".join(fold_digits(trimmed(text)).split()).rstrip(".!,;:~")',
        "bare = typed",
        (f"{TYPING}::test_a_number_and_a_code_with_a_particle_verify_at_once",),
    ),
    Mutant(
        "short-forms-where-too-long",
        "dialogs/engine.py",
        "if turn.shorter and self.fits is not None and not rich and not self.fits(reply):",
        "if False:",
        (f"{WEB}::test_every_reply_fits_two_segments_with_long_names_and_many_service_accounts",),
    ),
    Mutant(
        "welcome-sees-all",
        "dialogs/engine.py",
        "if head is not prompt and self.fits is not None and self._whole(prompt, rows, locale, state):",
        "if False:",
        (f"{TYPING}::test_a_welcome_shows_the_menu_rows_that_fit_and_more_shows_the_whole_menu",),
    ),
    Mutant(
        "bare-dung-opts-out-at-yes-no",
        "bot/channels/sms.py",
        'return said == "DỪNG" or (said == "DUNG" and fold(" ".join(words)) in ("DUNG", "DUNG LAI"))',
        'return said == "DỪNG"',
        (
            f"{WEB}::test_a_bare_dung_is_the_opt_out_word_even_at_a_yes_no_question_and_dung_with_marks_is_yes",
            "tests/bot/channels/test_sms.py::test_stop_in_vietnamese_with_its_marks_or_bare_opts_out_whatever_particle_comes_with_it",
        ),
    ),
    Mutant(
        "dung-with-a-particle-is-an-answer",
        "bot/channels/sms.py",
        'fold(" ".join(words)) in ("DUNG", "DUNG LAI")',
        "True",
        ("tests/bot/channels/test_sms.py::test_dung_without_marks_beside_a_particle_is_an_answer_not_a_stop",),
    ),
    Mutant(
        "one-attempt-for-two-readings",
        "bot/storage/accounts.py",
        "for code in dict.fromkeys((access_code, *alternatives[:1])):",
        "for code in (access_code,):",
        (f"{TYPING}::test_a_number_and_a_code_with_a_particle_verify_at_once",),
    ),
    Mutant(
        "both-means-two",
        "dialogs/engine.py",
        "_COUNTED_ALL.get(folded) == len(options)",
        "folded in _COUNTED_ALL",
        (f"{TYPING}::test_both_of_three_is_not_all",),
    ),
    Mutant(
        "stable-numbers",
        "dialogs/fields.py",
        "Choice(str(a.id), service_account_label(a), number=i, digits=a.number[-4:])",
        "Choice(str(a.id), service_account_label(a), digits=a.number[-4:])",
        (f"{TYPING}::test_the_numbers_of_a_list_stay_the_same_on_every_screen",),
    ),
    Mutant(
        "pages-fit",
        "dialogs/engine.py",
        "        if self.fits(whole):\n            return [rows]",
        "        if True:\n            return [rows]",
        (f"{TYPING}::test_a_hundred_service_accounts_page_within_two_segments_and_pick_across_pages",),
    ),
    Mutant(
        "idle-notice-only-when-lost",
        "dialogs/engine.py",
        "            if self._in_progress(session):  # a verification or a change was lost: say so",
        "            if True:  # a verification or a change was lost: say so",
        (f"{TYPING}::test_coming_back_after_reading_an_answer_is_not_told_of_a_lost_session",),
    ),
    Mutant(
        "greetings-are-not-mistakes",
        "dialogs/engine.py",
        "        greeting = self._greeting(words, state.free_text)\n        if greeting is not None:",
        "        greeting = self._greeting(words, state.free_text)\n        if False:",
        (f"{TYPING}::test_a_greeting_gets_a_greeting_and_the_question_again",),
    ),
    Mutant(
        "cancel-to-the-contacts-menu",
        "dialogs/engine.py",
        "self.menu if menu or state.cancel is None else state.cancel",
        "self.menu",
        ("tests/bot/test_conversation.py::test_menu_and_cancel_abandon_the_operation_and_save_nothing",),
    ),
    Mutant(
        "telegram-secret",
        "bot/web.py",
        "        if not hmac.compare_digest(given, secret):",
        "        if False:",
        (f"{TG_WEBHOOK}::test_a_missing_or_forged_secret_is_refused_and_changes_nothing",),
    ),
    Mutant(
        "stale-buttons",
        "bot/channels/buttons.py",
        "    if keyboard is None or not secrets.compare_digest(keyboard.token, press.token):",
        "    if keyboard is None:",
        (
            f"{TG}::test_a_button_of_a_question_that_has_passed_does_nothing",
            f"{TG}::test_forged_button_data_acts_on_nothing",
        ),
    ),
    Mutant(
        "button-rows-bounded",
        "bot/channels/buttons.py",
        "    if not 0 <= press.index < len(rows):\n        return STALE",
        "    if False:\n        return STALE",
        ("tests/bot/channels/test_buttons.py::test_a_press_of_another_keyboard_is_stale_and_changes_nothing",),
    ),
    Mutant(
        "someone-elses-phone",
        "bot/channels/telegram.py",
        "        own = contact.user_id is not None and contact.user_id == sender.id",
        "        own = True",
        (f"{TG}::test_sharing_ones_own_phone_links_the_contacts_and_unlinking_undoes_it",),
    ),
    Mutant(
        "telegram-link-twice",
        "bot/storage/telegram_links.py",
        "        return False\n    replays.remember(conn, CHANNEL, update_id, [], now)\n    return True",
        "        return True\n    return True",  # the replay's primary key alone would fail the second one loudly
        (f"{TG_WEBHOOK}::test_a_replayed_phone_share_links_and_audits_once",),
    ),
    Mutant(
        "edited-number-keeps-link",
        "bot/storage/accounts.py",
        '**({"telegram_chat_id": None} if field == "phone" else {})',
        "**{}",
        ("tests/bot/storage/test_telegram_links.py::test_a_contact_whose_number_is_edited_loses_its_link",),
    ),
    Mutant(
        "code-left-in-chat",
        "bot/conversation.py",
        "        secret = before is not None and before.secret and inbound.press is None",
        "        secret = False",
        (f"{TG}::test_a_vietnamese_customer_verifies_and_adds_a_contact_to_two_accounts_by_buttons",),
    ),
    Mutant(
        "telegram-link-lost",
        "bot/telegram.py",
        "            self._again.add(incoming.update_id)",
        "            pass",
        (f"{TG_ATTACKS}::test_a_link_change_the_database_could_not_take_is_asked_for_again_not_dropped",),
    ),
    Mutant(
        "telegram-down-stops-serve",
        "bot/telegram.py",
        '            except Exception as exc:\n                log.error("Telegram could not start',
        '            except ValueError as exc:\n                log.error("Telegram could not start',
        (f"{TG}::test_serve_keeps_sms_up_while_telegram_cannot_be_reached",),
    ),
    Mutant(
        "guessable-secret",
        "bot/config.py",
        'r"[A-Za-z0-9_-]{16,256}"',
        'r"[A-Za-z0-9_-]{1,256}"',
        (f"{TG_ATTACKS}::test_a_guessable_webhook_secret_is_refused",),
    ),
    Mutant(
        "help-beside-a-long-list",
        "dialogs/engine.py",
        "            return Reply(said, (), state.multi, session.locale, state.name)",
        "            return bare",
        (f"{TYPING}::test_help_at_a_list_stays_within_two_segments",),
    ),
    Mutant(
        "telegram-replay-unanswered",
        "bot/telegram.py",
        "            await self._again_as_before(incoming, answer.texts)",
        "            await self._toast(incoming, None)",
        (f"{TG_WEBHOOK}::test_a_replayed_update_changes_once_and_is_answered_once",),
    ),
    Mutant(
        "sender-past-a-429",
        "bot/channels/telegram_sender.py",
        "start = max(now, self._next, self._paused_until)",
        "start = max(now, self._next)",
        (f"{TG_ATTACKS_2}::test_a_429_holds_the_sends_already_waiting_for_their_place",),
    ),
    Mutant(
        "ticks-lost-on-the-same-question",
        "bot/conversation.py",
        "            keep = before is not None and reply.state == before.name",
        "            keep = False",
        (f"{TG_ATTACKS_2}::test_a_language_switch_in_a_multi_select_keeps_the_ticked_accounts",),
    ),
    Mutant(
        "removal-hides-the-last-contact",
        "dialogs/contacts.py",
        "    return sorted((account_ids & covered_by_removed) - covered_by_others)",
        "    return []",
        (
            "tests/bot/test_conversation.py::test_removing_the_last_contact_of_an_account_says_no_one_will_be_alerted",
            "tests/bot/test_conversation.py::test_removing_contacts_from_all_accounts_says_which_are_left_with_no_one",
        ),
    ),
    Mutant(
        "removal-names-accounts-already-without-contacts",
        "dialogs/contacts.py",
        "    return sorted((account_ids & covered_by_removed) - covered_by_others)",
        "    return sorted(account_ids - covered_by_others)",
        ("tests/bot/test_conversation.py::test_removing_contacts_from_all_accounts_says_which_are_left_with_no_one",),
    ),
    Mutant(
        "an-opted-out-contact-covers-an-account",
        "dialogs/contacts.py",
        "        elif contact.id in reachable:",
        "        else:",
        (
            "tests/bot/test_conversation.py::"
            "test_a_contact_whose_number_opted_out_does_not_count_as_one_who_gets_alerts",
        ),
    ),
    Mutant(
        "a-telegram-contact-opted-out-of-sms-is-unreachable",
        "bot/storage/accounts.py",
        "        _co.c.telegram_chat_id.is_not(None),\n",
        "",
        (
            "tests/bot/test_conversation.py::"
            "test_a_contact_whose_number_opted_out_does_not_count_as_one_who_gets_alerts",
        ),
    ),
    Mutant(
        "a-yes-is-a-name",
        "dialogs/fields.py",
        "    if _an_answer(name):",
        "    if False:",
        (f"{TYPING}::test_a_yes_or_no_where_a_name_is_asked_is_not_taken_for_a_name",),
    ),
    Mutant(
        "answer-particles-kept-in-names",
        "dialogs/fields.py",
        "    while len(words) > 1 and words[0] in _NAME_LEADING:",
        "    while False:",
        (f"{TYPING}::test_a_yes_or_no_where_a_name_is_asked_is_not_taken_for_a_name",),
    ),
    Mutant(
        "read-back-instead-of-help-asked",
        "dialogs/engine.py",
        "            if turn.helped:",
        "            if False:",
        (f"{WEB}::test_help_at_a_read_back_too_long_to_hold_it_is_said_alone_and_a_hint_is_left_out",),
    ),
    Mutant(
        "first-send-unprepared",
        "bot/dispatch.py",
        "        await self._prepare()\n",
        "",
        ("tests/bot/test_workers.py::test_four_workers_never_exceed_the_configured_rate_in_any_second",),
    ),
)


def copy_tree(into: Path) -> None:
    ignore = shutil.ignore_patterns(".venv", ".git", "node_modules", "__pycache__", ".hypothesis", "*.db*")
    shutil.copytree(ROOT, into, ignore=ignore, dirs_exist_ok=True)
    if (ROOT / "node_modules").exists():
        (into / "node_modules").symlink_to(ROOT / "node_modules")


def run(mutant: Mutant, tree: Path) -> str:
    """'killed', 'SURVIVED' or 'STALE' (the line to mutate is gone: update the table)."""
    path = tree / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.before) != 1:
        return "STALE"
    path.write_text(original.replace(mutant.before, mutant.after), encoding="utf-8")
    try:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        return "killed" if result.returncode != 0 else "SURVIVED"
    finally:
        path.write_text(original, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="outagebot-mutants-") as tmp:
        tree = Path(tmp) / "tree"
        copy_tree(tree)
        for mutant in chosen:
            started = time.monotonic()
            outcome = run(mutant, tree)
            bad += outcome != "killed"
            print(f"{outcome:9} {mutant.name:28} {time.monotonic() - started:6.1f} s  {mutant.path}", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} mutants killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
