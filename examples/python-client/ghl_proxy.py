#!/usr/bin/env python3
"""A Python app's side of ghl-connect, with the standard library only (urllib, hmac, http.server).

- Calls HighLevel through the connector's proxy (`ghl-connect serve`): the connector adds the
  installation's token, refreshes it, respects HighLevel's rate limits; the app sends its API key.
- Receives the events the connector forwards (GHL_WEBHOOK_FORWARD_URL), verified per Standard Webhooks.

Settings: GHL_CONNECTOR_URL (default http://127.0.0.1:3000), GHL_CONNECTOR_API_KEY,
GHL_WEBHOOK_FORWARD_SECRET (whsec_...).

    python3 ghl_proxy.py installations
    python3 ghl_proxy.py contacts LOCATION_ID
    python3 ghl_proxy.py create-contact LOCATION_ID EMAIL [FIRST_NAME]
    python3 ghl_proxy.py receive PORT        # prints each verified event as one JSON line
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ProxyError(Exception):
    """The connector (or HighLevel through it) answered an error: status and body as sent."""

    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class GhlProxy:
    """HighLevel's API through the connector's proxy."""

    def __init__(self, base_url=None, api_key=None, timeout=30):
        self.base_url = (base_url or os.environ.get("GHL_CONNECTOR_URL", "http://127.0.0.1:3000")).rstrip("/")
        self.api_key = api_key or os.environ["GHL_CONNECTOR_API_KEY"]
        self.timeout = timeout

    def request(self, method, path, query=None, body=None, version=None):
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if version:
            headers["Version"] = version  # otherwise the connector sends the operation's own
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                text = res.read().decode("utf-8")
                return res.status, json.loads(text) if text else None
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            raise ProxyError(err.code, parsed) from None

    def location(self, location_id, method, path, **kwargs):
        """A call for one sub-account: /proxy/locations/{id}<HighLevel path>."""
        return self.request(method, f"/proxy/locations/{urllib.parse.quote(location_id, safe='')}{path}", **kwargs)

    def installations(self):
        return self.request("GET", "/api/installations")[1]["installations"]

    def contacts(self, location_id, limit=20):
        return self.location(location_id, "GET", "/contacts/", query={"locationId": location_id, "limit": limit})[1]["contacts"]

    def create_contact(self, location_id, email, first_name=None):
        body = {"locationId": location_id, "email": email}
        if first_name:
            body["firstName"] = first_name
        return self.location(location_id, "POST", "/contacts/", body=body)[1]["contact"]


def verify_webhook(secret, headers, body, tolerance_seconds=300, now=None):
    """Verifies a Standard Webhooks signature; returns the event (a dict) or raises ValueError.

    `headers` maps lower-case names to values; `body` is the exact bytes received.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("the secret must start with whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs((now or time.time()) - int(timestamp)) > tolerance_seconds:
        raise ValueError("timestamp outside the tolerance")
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no signature matches")


def receive(port, secret):
    """Serves POST /ghl-events: verifies each forwarded event, prints it, answers 204 (acknowledged)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                event = verify_webhook(secret, {k.lower(): v for k, v in self.headers.items()}, body)
            except ValueError as err:
                self.send_response(400)
                self.end_headers()
                print(json.dumps({"rejected": str(err)}), flush=True)
                return
            print(json.dumps({"type": event.get("type"), "webhookId": event.get("webhookId"), "locationId": event.get("locationId")}), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    server.serve_forever()


def main(argv):
    if len(argv) >= 1 and argv[0] == "receive":
        receive(int(argv[1]) if len(argv) > 1 else 0, os.environ["GHL_WEBHOOK_FORWARD_SECRET"])
        return 0
    proxy = GhlProxy()
    try:
        if argv[:1] == ["installations"]:
            result = proxy.installations()
        elif argv[:1] == ["contacts"] and len(argv) == 2:
            result = proxy.contacts(argv[1])
        elif argv[:1] == ["create-contact"] and len(argv) in (3, 4):
            result = proxy.create_contact(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ProxyError as err:
        print(json.dumps({"status": err.status, "error": err.body}), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
