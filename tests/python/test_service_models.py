"""``GET /v1/models`` and ``GET /v1/models/{model}`` driven by the official ``openai`` client, and
the ``model`` label of the service's and the worker's metrics bounded by the configured models
(issue 20, point 5)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from pipeline_helpers import make_topics
from service_helpers import Service, config_document, free_port, run_server, service_on_stack

from kafka_llm import Pipeline, load_config
from kafka_llm.devstack import StackInfo
from kafka_llm.service.app import create_app
from kafka_llm.service.keystore import KeyStore, make_engine
from kafka_llm.service.metrics import model_label
from kafka_llm.service.settings import ServiceSettings

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def catalog(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service (no worker needed) whose providers all list their models: no catch-all."""
    tmp = tmp_path_factory.mktemp("svc-models")
    name = f"t-svc-models-{secrets.token_hex(4)}"
    topics = make_topics(stack, name, partitions=1)
    url = stack.provider_url
    document = config_document(
        stack,
        topics,
        providers=[
            {"name": "openai", "baseURL": url, "models": ["gpt-4o", "gpt-4o-mini", "gpt-4o*"]},
            {"name": "groq", "baseURL": url, "models": ["llama-3.1-8b", "gpt-4o"]},
            {"name": "claude", "kind": "anthropic", "baseURL": url, "models": ["claude-*"]},
        ],
    )
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(document))
    settings = ServiceSettings(
        config=str(config_path), database_url=f"sqlite:///{tmp / 'models.db'}", key_cache_seconds=0
    )
    engine = make_engine(settings.database_url)
    token, _ = KeyStore(engine).create("tests")
    app = create_app(settings)
    port = free_port()
    try:
        with run_server(app, port) as server:
            yield Service(
                f"http://127.0.0.1:{port}", settings, topics, token, config_path, server, app, engine
            )
    finally:
        engine.dispose()


def _client(service: Service, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{service.url}/v1", api_key=key or service.api_key, max_retries=0, timeout=30
    )


def test_openai_client_lists_the_literal_models_with_their_provider(catalog: Service) -> None:
    with _client(catalog) as client:
        models = list(client.models.list())
    # Literal names once each, in configuration order; the glob gpt-4o* is not a model id.
    assert [m.id for m in models] == ["gpt-4o", "gpt-4o-mini", "llama-3.1-8b"]
    assert {m.id: m.owned_by for m in models} == {
        "gpt-4o": "openai",  # also listed by groq, but requests for it go to openai (first match)
        "gpt-4o-mini": "openai",
        "llama-3.1-8b": "groq",
    }
    assert all(m.object == "model" and isinstance(m.created, int) and m.created > 0 for m in models)
    raw = httpx.get(f"{catalog.url}/v1/models", headers=catalog.headers(), timeout=10).json()
    assert raw["object"] == "list"
    assert set(raw["data"][0]) == {"id", "object", "created", "owned_by"}


def test_openai_client_retrieves_a_served_model_and_404s_an_unknown_one(catalog: Service) -> None:
    with _client(catalog) as client:
        assert client.models.retrieve("gpt-4o-mini").owned_by == "openai"
        # Not listed, but served through a pattern: retrievable (a request for it is accepted).
        dated = client.models.retrieve("gpt-4o-2024-08-06")
        assert (dated.id, dated.owned_by, dated.object) == ("gpt-4o-2024-08-06", "openai", "model")
        assert client.models.retrieve("claude-3-haiku").owned_by == "claude"
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("no-such-model")
    assert caught.value.status_code == 404
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found" and body["param"] == "model"
    assert "no-such-model" in body["message"]
    raw = httpx.get(f"{catalog.url}/v1/models/no-such-model", headers=catalog.headers(), timeout=10)
    assert raw.status_code == 404 and set(raw.json()["error"]) == {"message", "type", "code", "param"}


def test_models_are_filtered_by_what_the_key_may_use(catalog: Service) -> None:
    token, _ = catalog.keys().create("only-gpt-4o", models=["gpt-4o*"])
    with _client(catalog, token) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("llama-3.1-8b")  # configured, but not for this key


def test_models_need_an_api_key(catalog: Service) -> None:
    for path in ("/v1/models", "/v1/models/gpt-4o"):
        response = httpx.get(f"{catalog.url}{path}", timeout=10)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "missing_api_key"


# --- bounded model labels -----------------------------------------------------------------------


def test_model_label_maps_to_configured_names() -> None:
    models = ("gpt-4o", "gpt-4o*", "o[13]-*")
    assert model_label(models, "gpt-4o") == "gpt-4o"
    assert model_label(models, "gpt-4o-mini") == "gpt-4o*"
    assert model_label(models, "o3-high") == "o[13]-*"
    assert model_label(models, "random") == "other"
    assert model_label((), "anything") == "other"  # a provider serving any name


def _label_values(metrics_text: str, metric: str) -> set[str]:
    values: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith(metric + "{"):
            found = re.search(r'model="([^"]*)"', line)
            assert found is not None, line
            values.add(found.group(1))
    return values


def test_random_model_names_leave_a_bounded_number_of_label_values(stack: StackInfo, tmp_path: Path) -> None:
    name = f"t-svc-labels-{secrets.token_hex(4)}"
    with service_on_stack(stack, name, tmp_path, worker=False) as service:
        pipeline = Pipeline(load_config(str(service.config_path), env={}))
        with pipeline, httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as http:
            ids: list[str] = []
            for i in range(200):
                # 100 names the default provider (no models list) serves, 100 a glob serves.
                if i % 2:
                    request = {"provider": "restricted", "model": f"small-{secrets.token_hex(6)}"}
                else:
                    request = {"model": f"rnd-{secrets.token_hex(6)}"}
                response = http.post("/process", json={**request, "prompt": f"p{i}", "max_tokens": 4})
                assert response.status_code == 202, response.text
                ids.append(response.json()["request_id"])
            deadline = time.monotonic() + 30
            pending = set(ids)
            while pending:
                assert time.monotonic() < deadline, f"{len(pending)} requests unanswered after 30 s"
                pending = {i for i in pending if "output" not in http.get(f"/result/{i}").json()}
                time.sleep(0.1)
            # Counted just after the result is stored: the worker's counters and the service's
            # tokens (from the response records) may lag the results by a moment.
            expected = {"other", "small-*"}
            deadline = time.monotonic() + 10
            while True:
                service_text = http.get("/metrics").text
                worker_text = pipeline.metrics_text()
                counted = re.findall(r'kafka_llm_requests_total\{[^}]*outcome="ok"[^}]*\} (\d+)', worker_text)
                done = sum(int(float(c)) for c in counted) >= 200
                if (done and _label_values(service_text, "kafka_llm_tokens_total") == expected) or (
                    time.monotonic() > deadline
                ):
                    break
                time.sleep(0.1)
    for text, who in ((service_text, "service"), (worker_text, "worker")):
        assert "rnd-" not in text, who
        requests = _label_values(text, "kafka_llm_requests_total")
        tokens = _label_values(text, "kafka_llm_tokens_total")
        assert requests == expected, (who, requests)
        assert tokens == expected, (who, tokens)
    assert sum(int(float(c)) for c in counted) == 200, worker_text
