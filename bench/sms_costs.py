"""What a conversation costs over SMS: messages, SMS and segments for each operation, in both languages.

Each operation is a whole conversation from the first message, typed as a customer would, run through
the SMS webhook (``POST /sms/inbound``, signed as Twilio signs it) on a fresh SQLite file with the demo
data. Every ``<Message>`` of a reply is one SMS; segments are counted as carriers count them (GSM-7, or
UCS-2 for any Vietnamese letter). Figures, not timings: they do not depend on the machine.

``--baseline DIR`` runs the add-a-contact conversation in the same run on another checkout (the issue's
fdf572a: ``git worktree add --detach ../base fdf572a``), typed as that version asks for it (name and
number in two messages, a language question first), and prints it beside ours.
Run: ``python bench/sms_costs.py [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, os.environ.get("OUTAGEBOT_BENCH_TREE") or str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from bot.app import build
from bot.channels.segments import count_segments
from bot.config import Settings
from bot.importer import import_file
from bot.web import create_web

TREE = Path(sys.path[0])  # the checkout measured: this one, or the baseline's (--baseline)
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
OLD_FLOW = {  # the add-a-contact conversation as fdf572a asks for it
    "add a contact": (
        ["xin chào", "1", "1", "700000001", "482913", "1", "Lê Thị Cúc", "714 555 0177", "không", "1", "1,3", "có"],
        ["hello", "2", "1", "700000002", "731562", "1", "Maria Cruz", "626 555 0199", "n", "2", "1,2", "yes"],
    )
}


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


def measure(conversations: dict[str, tuple[list[str], list[str]]]) -> dict[str, list[tuple[int, int, int]]]:
    """Each conversation's cost in both languages, on a fresh SQLite file with the demo data."""
    logging.disable(logging.WARNING)  # the opt-in notices find no Twilio here: that is not the figure
    found: dict[str, list[tuple[int, int, int]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/bench.db", pepper="bench", scrypt_n=16, **TWILIO)  # type: ignore[arg-type]
        app = build(settings)
        import_file(app.db, app.hasher, TREE / "bot" / "demo_accounts.csv")
        with TestClient(create_web(app), base_url=TWILIO["public_url"]) as client:
            for i, (operation, pair) in enumerate(conversations.items()):
                found[operation] = [cost(client, f"+1714556{i:02d}{j:02d}", texts) for j, texts in enumerate(pair)]
        app.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to run the add-a-contact conversation on")
    parser.add_argument("--old-flow-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.old_flow_json:  # run inside the baseline's tree (see --baseline)
        print(json.dumps(measure(OLD_FLOW)))
        return
    baseline: dict[str, list[list[int]]] = {}
    if args.baseline:
        env = {**os.environ, "OUTAGEBOT_BENCH_TREE": str(args.baseline.resolve())}
        out = subprocess.run(
            [sys.executable, __file__, "--old-flow-json"], env=env, capture_output=True, text=True, check=True
        )
        baseline = json.loads(out.stdout)
    ours = measure(CONVERSATIONS)
    label = args.baseline.name if args.baseline else ""
    heading = f"{label} (in/SMS/segments)" if label else ""
    print(f"{'operation':<22}{'lang':<6}{'in':>4}{'SMS':>5}{'segments':>10}   {heading}")
    for operation, costs in ours.items():
        for j, (locale, (messages, sms, segments)) in enumerate(zip(("vi", "en"), costs, strict=True)):
            before = baseline.get(operation)
            then = "{}/{}/{}".format(*before[j]) if before else ""
            print(f"{operation:<22}{locale:<6}{messages:>4}{sms:>5}{segments:>10}   {then}")


if __name__ == "__main__":
    main()
