"""A Tidings client that is not Tidings: the wire contract of
docs/wire-format.md written from the document alone, with nats-py.

    tidings_client.py publish --url URL --type T --org O [--key K] --version V --data JSON [--id UUID]
    tidings_client.py read --url URL --filter SUBJECT

`publish` builds the CloudEvents structured-mode body and the headers and
publishes to JetStream, awaiting the PubAck; it prints the event id, the
subject and the PubAck as one JSON line. `read` reads the first event on
the filter through an ephemeral ordered consumer (nothing left behind) and
prints its subject, headers and body as one JSON line. Used by
tests/interop.rs; exits non-zero with a message on stderr on any error.
"""

import argparse
import asyncio
import datetime
import json
import sys
import uuid

import nats

STRUCTURED = "application/cloudevents+json"


def subject_of(event_type, organization, key):
    """`<service>.<entity>.<action>.<organization>.<key or _>`."""
    return f"{event_type}.{organization}.{key if key else '_'}"


def envelope(event_id, event_type, organization, key, version, data):
    """The CloudEvents 1.0 body: required attributes, the two Tidings
    extensions, and the payload under `data`."""
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/python/interop",
        "type": event_type,
        "time": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "organizationid": organization,
        "schemaversion": version,
        "data": data,
    }
    if key:
        body["subject"] = key
    return body


async def publish(args):
    nc = await nats.connect(args.url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        event_id = args.id or str(uuid.uuid4())
        body = envelope(event_id, args.type, args.org, args.key, args.version, json.loads(args.data))
        headers = {
            # Deduplication: the stream stores one copy per id within its window.
            "Nats-Msg-Id": event_id,
            "content-type": STRUCTURED,
            # Optional binary-mode headers; when present they must agree with the body.
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": args.type,
        }
        subject = subject_of(args.type, args.org, args.key)
        ack = await js.publish(subject, json.dumps(body).encode(), headers=headers, timeout=10)
        print(json.dumps({
            "id": event_id,
            "subject": subject,
            "stream": ack.stream,
            "seq": ack.seq,
            "duplicate": bool(ack.duplicate),
        }))
    finally:
        await nc.close()


async def read(args):
    nc = await nats.connect(args.url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(args.filter, ordered_consumer=True)
        try:
            msg = await sub.next_msg(timeout=10)
        finally:
            await sub.unsubscribe()
        print(json.dumps({
            "subject": msg.subject,
            "headers": dict(msg.headers or {}),
            "event": json.loads(msg.data),
        }))
    finally:
        await nc.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("publish")
    p.add_argument("--url", required=True)
    p.add_argument("--type", required=True)
    p.add_argument("--org", required=True)
    p.add_argument("--key")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--id")
    r = commands.add_parser("read")
    r.add_argument("--url", required=True)
    r.add_argument("--filter", required=True)
    args = parser.parse_args()
    try:
        asyncio.run(publish(args) if args.command == "publish" else read(args))
    except Exception as error:  # one clear line for the Rust test's failure message
        print(f"tidings_client.py {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
