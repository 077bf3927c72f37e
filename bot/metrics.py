"""Prometheus metrics of the service, served at ``/metrics`` (``prometheus-client``).

Counters and histograms are updated where things happen, after the turn committed (a turn that was
rolled back and run again counts once). With several workers, ``outagebot serve`` gives them a shared
directory (``PROMETHEUS_MULTIPROC_DIR``, set before they start) and ``/metrics`` adds up every
worker's files, whichever worker answers the scrape; with one worker the values live in memory.
The outbox's depth is read from the database at each scrape, so it is the same from every worker.

What an alert rule can watch: ``rate(outagebot_verifications_total{result="failure"}[5m])`` (the
failure spike the log's ALARM line reports, across workers), ``outagebot_lockouts_total``,
``outagebot_turns_total{outcome="failed"}`` (apologies), ``outagebot_outbox_messages{status="pending"}``,
``outagebot_provider_errors_total`` by Twilio error code, ``outagebot_webhooks_rejected_total``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from bot.storage.outbound import STATUSES

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: a counter's start time is noise for an alert rule
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"

TURNS = Counter(
    "outagebot_turns", "Messages answered, by channel and outcome (answered, replayed, failed).", ["channel", "outcome"]
)
TURN_SECONDS = Histogram(
    "outagebot_turn_seconds",
    "Time to answer a message (the turn and its retries).",
    ["channel"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VERIFICATIONS = Counter(
    "outagebot_verifications", "Access-code verifications, by result (success, failure).", ["result"]
)
LOCKOUTS = Counter("outagebot_lockouts", "Customer accounts locked after too many failed verifications.")
CHANGES = Counter("outagebot_contact_changes", "Contact changes saved by customers, by action.", ["action"])
REJECTED = Counter(
    "outagebot_webhooks_rejected",
    "Webhook requests refused, by reason (signature, too_large, bad_request).",
    ["reason"],
)
SENDS = Counter(
    "outagebot_sends",
    "Alerts and notices the dispatcher handed to a provider, by channel and outcome.",
    ["channel", "outcome"],
)
PROVIDER_ERRORS = Counter("outagebot_provider_errors", "Sends the provider refused or failed, by error code.", ["code"])
OUTBOX_STATUSES = STATUSES  # every status is shown, 0 when none has it


def observe_turn(channel: str, seconds: float, *, failed: bool, replayed: bool, actions: Iterable[str]) -> None:
    """Count one answered message and what its committed turn did (the audit actions it wrote)."""
    outcome = "failed" if failed else "replayed" if replayed else "answered"
    TURNS.labels(channel, outcome).inc()
    TURN_SECONDS.labels(channel).observe(seconds)
    for action in actions:
        if action == "verify.success":
            VERIFICATIONS.labels("success").inc()
        elif action == "verify.failure":
            VERIFICATIONS.labels("failure").inc()
        elif action == "verify.locked":
            LOCKOUTS.inc()
        elif action.startswith("contact."):
            CHANGES.labels(action.removeprefix("contact.")).inc()


class _Outbox(Collector):
    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("outagebot_outbox_messages", "Messages in the outbox, by status.", labels=["status"])
        for status in sorted({*OUTBOX_STATUSES, *self.counts}):
            gauge.add_metric([status], self.counts.get(status, 0))
        yield gauge


def exposition(outbox: Mapping[str, int]) -> bytes:
    """The text a Prometheus scrape gets: every worker's counters, and the outbox read just now."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    registry = CollectorRegistry()
    registry.register(_Outbox(outbox))
    return text + generate_latest(registry)
