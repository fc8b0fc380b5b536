"""``kafka-llm api``: the HTTP service (``kafka_llm.service``) under uvicorn."""

from __future__ import annotations

import argparse
import os

from kafka_llm.cli._common import Subcommands, add_config_arg, note

_EXTRA_HINT = "the service needs its extra: pip install 'kafka-llm[service]'"


def register(sub: Subcommands) -> None:
    api = sub.add_parser(
        "api",
        help="run the HTTP service (FastAPI under uvicorn)",
        description="Serves /process, /result, the OpenAI-compatible /v1 endpoints, /health and /metrics. "
        "Other settings come from KAFKA_LLM_* environment variables (KAFKA_LLM_DATABASE_URL, "
        "KAFKA_LLM_AUTH_ENABLED, KAFKA_LLM_CACHE_TTL_SECONDS, KAFKA_LLM_OTLP_ENDPOINT, ...).",
    )
    add_config_arg(api, "the workers' YAML configuration (Kafka, Redis, providers)")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    api.add_argument(
        "--database-url", help="API keys and inference log (default sqlite:///kafka-llm-service.db)"
    )
    api.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    api.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from kafka_llm.service.http_limits import uvicorn_http_options
        from kafka_llm.service.redact import uvicorn_log_config
        from kafka_llm.service.settings import ServiceSettings
    except ImportError as e:
        note("api", f"{_EXTRA_HINT} ({e})")
        return 2
    # Worker processes read their settings from the environment: put the flags there.
    if args.config:
        os.environ["KAFKA_LLM_CONFIG"] = os.path.abspath(args.config)
    if args.database_url:
        os.environ["KAFKA_LLM_DATABASE_URL"] = args.database_url
    try:
        from kafka_llm.config import load_config

        settings = ServiceSettings()
        load_config(settings.config)  # fail before forking workers, naming the key
    except Exception as e:
        note("api", str(e))
        return 2
    from uvicorn.config import WS_PROTOCOLS

    uvicorn.run(
        "kafka_llm.service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        # uvicorn's logging with API keys and other credentials in query strings redacted; a
        # dict, so every --workers process installs it.
        log_config=uvicorn_log_config(),
        lifespan="on",
        # The sans-I/O WebSocket protocol where uvicorn has it (the legacy one is deprecated).
        ws="websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto",
        # The raw request head bounded (KAFKA_LLM_MAX_HEADER_BYTES + 8 KiB): 431 (httptools) or
        # 400 (h11) before the app; the app's own check answers 431 above the exact limit.
        **uvicorn_http_options(settings.max_header_bytes),
    )
    return 0
