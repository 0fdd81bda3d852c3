#!/usr/bin/env python3
"""Verifies a captured o2o webhook delivery with the reference Standard Webhooks library.

Usage: webhook-verify.py CAPTURE.json

CAPTURE.json is written by the integration test
`webhooks::a_payment_reaches_the_endpoint_once_signed_per_standard_webhooks` when
O2O_WEBHOOK_CAPTURE names a file: {"secret": "whsec_...", "headers": {"webhook-id", "webhook-timestamp",
"webhook-signature"}, "body": "..."}. The delivery must verify as sent, and must not verify once its
body, id or timestamp is changed. Exits non-zero, saying why, otherwise.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def fail(message: str) -> None:
    print(f"webhook-verify: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def must_not_verify(webhook: Webhook, body: str, headers: dict, what: str) -> None:
    try:
        webhook.verify(body, headers)
    except WebhookVerificationError:
        return
    fail(f"a delivery with {what} still verified")


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: webhook-verify.py CAPTURE.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        capture = json.load(f)
    secret, headers, body = capture["secret"], capture["headers"], capture["body"]
    if not secret.startswith("whsec_"):
        fail(f"the secret does not start with whsec_: {secret[:6]}...")

    webhook = Webhook(secret)
    try:
        payload = webhook.verify(body, headers)
    except WebhookVerificationError as e:
        fail(f"the delivery does not verify: {e}")
    if payload.get("id") != headers["webhook-id"]:
        fail(f"the body's id {payload.get('id')!r} is not the webhook-id {headers['webhook-id']!r}")
    if payload.get("type") != "payment.succeeded":
        fail(f"unexpected event type {payload.get('type')!r}")

    must_not_verify(webhook, body + " ", headers, "a changed body")
    must_not_verify(webhook, body, {**headers, "webhook-id": headers["webhook-id"] + "x"}, "another id")
    must_not_verify(
        webhook, body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}, "another timestamp"
    )
    must_not_verify(Webhook("whsec_" + "A" * 32), body, headers, "another secret")

    print(f"webhook-verify: {headers['webhook-id']} ({payload['type']}) verifies with the standardwebhooks library")


if __name__ == "__main__":
    main()
