"""The HTTP service (``kafka-llm api``): a FastAPI app in front of Kafka and the workers.

Needs the ``service`` extra (``pip install 'kafka-llm[service]'``). Build the app with
``kafka_llm.service.app.create_app()``; importing this package alone pulls in nothing heavy, so the
CLI (``kafka_llm.cli``) can offer ``api`` and ``keys`` without the extra installed.
"""

from __future__ import annotations
