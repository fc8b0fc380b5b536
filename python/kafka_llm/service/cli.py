"""``kafka-llm api`` (the HTTP service under uvicorn) and ``kafka-llm keys create|list|revoke``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["register_cli"]

_EXTRA_HINT = "the service needs its extra: pip install 'kafka-llm[service]'"


def register_cli(sub: Any) -> None:
    api = sub.add_parser(
        "api",
        help="run the HTTP service (FastAPI under uvicorn)",
        description="Serves /process, /result, the OpenAI-compatible /v1 endpoints, /health and /metrics. "
        "Other settings come from KAFKA_LLM_* environment variables (KAFKA_LLM_DATABASE_URL, "
        "KAFKA_LLM_AUTH_ENABLED, KAFKA_LLM_CACHE_TTL_SECONDS, KAFKA_LLM_OTLP_ENDPOINT, ...).",
    )
    api.add_argument("--config", "-c", help="the workers' YAML configuration (Kafka, Redis, providers)")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    api.add_argument(
        "--database-url", help="API keys and inference log (default sqlite:///kafka-llm-service.db)"
    )
    api.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    api.set_defaults(func=_run_api)

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
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_keys_revoke)


def _run_api(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from kafka_llm.service.settings import ServiceSettings
    except ImportError as e:
        print(f"kafka-llm api: {_EXTRA_HINT} ({e})", file=sys.stderr)
        return 2
    # Worker processes read their settings from the environment: put the flags there.
    if args.config:
        os.environ["KAFKA_LLM_CONFIG"] = os.path.abspath(args.config)
    if args.database_url:
        os.environ["KAFKA_LLM_DATABASE_URL"] = args.database_url
    try:
        from kafka_llm.config import load_config

        load_config(ServiceSettings().config)  # fail before forking workers, naming the key
    except Exception as e:
        print(f"kafka-llm api: {e}", file=sys.stderr)
        return 2
    from uvicorn.config import WS_PROTOCOLS

    uvicorn.run(
        "kafka_llm.service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        lifespan="on",
        # The sans-I/O WebSocket protocol where uvicorn has it (the legacy one is deprecated).
        ws="websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto",
    )
    return 0


def _store(args: argparse.Namespace) -> Any:
    from kafka_llm.service.keystore import KeyStore, make_engine
    from kafka_llm.service.settings import ServiceSettings

    settings = ServiceSettings()
    engine = make_engine(args.database_url or settings.database_url)
    return KeyStore(engine, settings.api_key_pepper.get_secret_value()), engine


def _keys_create(args: argparse.Namespace) -> int:
    store, engine = _store(args)
    try:
        token, key = store.create(args.name, args.model)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"key": token, **key.to_json()}))
    else:
        print(f"created key {key.id} ({key.name}); store it now, it is not shown again:")
        print(token)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    store, engine = _store(args)
    try:
        keys = store.list()
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([k.to_json() for k in keys]))
        return 0
    print(f"{'ID':<18} {'NAME':<24} {'CREATED':<26} {'REVOKED':<26} MODELS")
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        print(
            f"{k.id:<18} {k.name:<24} {k.created_at.isoformat(timespec='seconds'):<26} {revoked:<26} "
            f"{','.join(k.models) or '*'}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    store, engine = _store(args)
    try:
        revoked = store.revoke(args.key_id)
    finally:
        engine.dispose()
    if not revoked:
        print(f"kafka-llm keys: no active key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0
