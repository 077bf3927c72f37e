"""What a conversation costs over SMS: messages, SMS and segments for each operation, in both languages.

Each operation is a whole conversation from the first message, typed as a customer would, run through
the SMS webhook (``POST /sms/inbound``, signed as Twilio signs it) on a fresh SQLite file with the demo
data. Every ``<Message>`` of a reply is one SMS; segments are counted as carriers count them (GSM-7, or
UCS-2 for any Vietnamese letter). Figures, not timings: they do not depend on the machine. The issue's
baseline (fdf572a, the add-a-contact conversation) is printed beside ours: 23 segments in Vietnamese and
17 in English. Run: ``python bench/sms_costs.py``.
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from bot.app import build
from bot.channels.segments import count_segments
from bot.config import Settings
from bot.importer import import_file
from bot.web import create_web

ROOT = Path(__file__).resolve().parent.parent
TWILIO = {
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "bench-token",
    "twilio_from": "+17145550000",
    "public_url": "http://127.0.0.1:8080",
}
VI_LOGIN = ["xin chào", "1", "700000001", "482913"]
EN_LOGIN = ["hello", "1", "700000002", "731562"]
CONVERSATIONS = {  # operation: (Vietnamese, English)
    "verify": (VI_LOGIN, EN_LOGIN),
    "add a contact": (
        [*VI_LOGIN, "1", "Lê Thị Cúc 714 555 0177", "không có", "1", "1 3", "có"],
        [*EN_LOGIN, "1", "Maria Cruz 626 555 0199", "no", "2", "1 2", "yes"],
    ),
    "add to accounts": ([*VI_LOGIN, "2", "2", "1", "có"], [*EN_LOGIN, "2", "1", "ALL", "yes"]),
    "edit a phone": (
        [*VI_LOGIN, "3", "1", "2", "714 555 0166", "có"],
        [*EN_LOGIN, "3", "1", "2", "626 555 0166", "yes"],
    ),
    "remove from accounts": ([*VI_LOGIN, "4", "1", "*1002", "có"], [*EN_LOGIN, "4", "1", "1", "yes"]),
    "ALL accounts": ([*VI_LOGIN, "5", "1", "tất cả", "có"], [*EN_LOGIN, "5", "1", "1", "yes"]),
    "see contacts": ([*VI_LOGIN, "6"], [*EN_LOGIN, "6"]),
    "medical notice": (["xin chào", "2"], ["hello", "2"]),
}
BASELINE = {"add a contact": (23, 17)}


def cost(client: TestClient, number: str, texts: list[str]) -> tuple[int, int, int]:
    """(messages in, SMS out, segments out) of one conversation."""
    validator = RequestValidator(TWILIO["twilio_auth_token"])
    url = TWILIO["public_url"] + "/sms/inbound"
    sms = segments = 0
    for text in texts:
        form = {"MessageSid": f"SM{next(SIDS):032x}", "From": number, "To": TWILIO["twilio_from"], "Body": text}
        response = client.post(
            "/sms/inbound", data=form, headers={"X-Twilio-Signature": validator.compute_signature(url, form)}
        )
        response.raise_for_status()
        for message in ET.fromstring(response.text).iter("Message"):
            sms += 1
            segments += count_segments(message.text or "").count
    return len(texts), sms, segments


SIDS = itertools.count(1)


def main() -> None:
    logging.disable(logging.WARNING)  # the opt-in notices find no Twilio here: that is not the figure
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/bench.db", pepper="bench", scrypt_n=16, **TWILIO)  # type: ignore[arg-type]
        app = build(settings)
        import_file(app.db, app.hasher, ROOT / "bot" / "demo_accounts.csv")
        print(f"{'operation':<22}{'lang':<6}{'in':>4}{'SMS':>5}{'segments':>10}{'fdf572a':>9}")
        with TestClient(create_web(app), base_url=TWILIO["public_url"]) as client:
            for i, (operation, pair) in enumerate(CONVERSATIONS.items()):
                for j, (locale, texts) in enumerate(zip(("vi", "en"), pair, strict=True)):
                    number = f"+1714556{i:02d}{j:02d}"
                    messages, sms, segments = cost(client, number, texts)
                    before = BASELINE.get(operation, (None, None))[j]
                    print(f"{operation:<22}{locale:<6}{messages:>4}{sms:>5}{segments:>10}{before or '':>9}")
        app.close()


if __name__ == "__main__":
    main()
