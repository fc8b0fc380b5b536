"""``kafka-llm keys create|list|revoke``: the HTTP service's API keys (``kafka_llm.service.keystore``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kafka_llm.cli._common import Subcommands, add_json_flag, note, print_json

if TYPE_CHECKING:
    from kafka_llm.service.keystore import KeyStore


def register(sub: Subcommands) -> None:
    keys = sub.add_parser(
        "keys", help="manage the service's API keys", description="Create, list and revoke API keys."
    )
    keys.add_argument(
        "--database-url", help="the service's database (default: KAFKA_LLM_DATABASE_URL or sqlite)"
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print it (shown only this once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATTERN",
        help="allow only these models (glob; repeatable)",
    )
    create.add_argument(
        "--admin",
        action="store_true",
        help="an admin key: reads and cancels every key's results (other keys see only their own)",
    )
    add_json_flag(create, "print JSON")
    create.set_defaults(func=_create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    add_json_flag(listing, "print JSON")
    listing.set_defaults(func=_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_revoke)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[KeyStore]:
    """The key store of ``--database-url`` (else the service's setting); its engine is disposed
    of on leaving."""
    # Imported here: the service extra is needed only when a keys command runs.
    from kafka_llm.service.keystore import KeyStore, make_engine
    from kafka_llm.service.settings import ServiceSettings

    settings = ServiceSettings()
    engine = make_engine(args.database_url or settings.database_url)
    try:
        yield KeyStore(engine, settings.api_key_pepper.get_secret_value())
    finally:
        engine.dispose()


def _create(args: argparse.Namespace) -> int:
    with _store(args) as store:
        token, key = store.create(args.name, args.model, admin=args.admin)
    if args.json:
        print_json({"key": token, **key.to_json()})
    else:
        kind = "admin key" if key.admin else "key"
        print(f"created {kind} {key.id} ({key.name}); store it now, it is not shown again:")
        print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        keys = store.list()
    if args.json:
        print_json([k.to_json() for k in keys])
        return 0
    print(f"{'ID':<18} {'NAME':<24} {'CREATED':<26} {'REVOKED':<26} MODELS")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        print(
            f"{k.id:<18} {k.name:<24} {k.created_at.isoformat(timespec='seconds'):<26} {revoked:<26} "
            f"{','.join(k.models) or '*'}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        revoked = store.revoke(args.key_id)
    if not revoked:
        note("keys", f"no active key {args.key_id!r}")
        return 1
    print(f"revoked {args.key_id}")
    return 0
