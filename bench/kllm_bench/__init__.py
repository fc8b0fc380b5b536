"""The benchmark harness behind ``make bench`` / ``kafka-llm bench`` (bench/README.md).

Each scenario runs the native worker (``kafka-llm worker``, a separate process) and the Python
asyncio peer (``bench/baselines/asyncio_worker.py``) side by side on one local stack (Kafka in
KRaft mode, Redis, the native mock provider), repeats every measurement and reports medians and
ratios. See ``bench/README.md``.
"""
