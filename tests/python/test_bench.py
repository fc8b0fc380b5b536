"""The benchmark harness (``bench/``): its report and README table, and a smoke run of every
scenario end to end on its own stack. Nothing here depends on speed: the smoke run checks that each
scenario finishes its requests and produces its figures, not what the figures are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from kllm_bench import report  # noqa: E402


def _results(**overhead: Any) -> dict[str, Any]:
    core = {"requests_per_s": 12000.0, "cpu_us_per_request": 40.0, "cpu_s_per_1000": 0.04}
    peer = {"requests_per_s": 400.0, "cpu_us_per_request": 2000.0, "cpu_s_per_1000": 2.0}
    median = {
        "core": core,
        "peer": peer,
        "core_vs_peer": 30.0,
        "core_vs_loopback": 0.3,
        "peer_vs_loopback": 0.01,
        "loopback": {"requests_per_s": 40000.0},
    }
    median.update(overhead)
    return {
        "date": "2026-11-22",
        "repeats": 3,
        "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "load_average_at_start": [1.25, 1.0, 1.0]},
        "git": {"commit": "0123456789abcdef"},
        "scenarios": {
            "overhead": {"median": median},
            "storm": {
                "median": {
                    "core": {"vs_ideal": 1.1, "completion_s": 7.7, "ideal_s": 7.0, "rebalances": 0},
                    "peer": {"vs_ideal": 1.7, "completion_s": 30.0, "ideal_s": 17.6, "rebalances": 2},
                }
            },
        },
    }


def _row(rows: Sequence[tuple[str, ...]], metric: str) -> tuple[str, ...]:
    return next(r for r in rows if r[1] == metric)


def test_rows_compare_medians_with_the_targets() -> None:
    rows = report.rows(_results())
    assert _row(rows, "kafka-llm / peer throughput")[2:] == ("30.0\u00d7", "", "≥ 10\u00d7", "met")
    assert _row(rows, "worker / loopback limit")[2:] == ("30%", "1%", "≥ 50 %", "**not met**")
    assert _row(rows, "worker CPU per request")[2:] == ("40 µs", "2000 µs", "≤ 50 µs", "met")
    assert _row(rows, "completion time / ideal")[2:4] == ("1.10\u00d7", "1.70\u00d7")
    rows = report.rows(_results(core_vs_peer=None))
    assert _row(rows, "kafka-llm / peer throughput")[5] == "not measured"


def test_service_rows_state_how_they_were_measured() -> None:
    """Scenario 5's README rows name the settings they were measured with (auth, connections), and
    the time to first token is shown beside the provider's own, with the difference."""
    results = _results()
    results["scenarios"]["service"] = {
        "median": {
            "auth_c16": {"requests_per_s": 410.0, "p50_ms": 30.0, "p99_ms": 90.0},
            "auth_c64": {"requests_per_s": 480.0, "p50_ms": 120.0, "p99_ms": 700.0, "cpu_us_per_request": 15},
            "open_c64": {"requests_per_s": 880.0},
            "first_token": {"service_p50_ms": 16.5, "provider_p50_ms": 1.5, "added_p50_ms": 15.0},
        }
    }
    rows = report.rows(results)
    assert _row(rows, report._S5_PROCESS)[2] == "410 / 480"
    assert _row(rows, "POST /process requests/s, auth off, wrk -c64")[2] == "880"
    assert _row(rows, report._S5_TTFT)[2] == "16.5 / 1.5 ms (+15.0 ms)"
    section = report.readme_section(results, "bench/results/LATEST.md")
    assert "auth on, 1 uvicorn worker, wrk -c16 / -c64 | 410 / 480 |" in section
    assert "service / provider alone | 16.5 / 1.5 ms (+15.0 ms) |" in section
    service = report.service_section(results, "../bench/results/2026-11-22.md")
    assert service.startswith(report.SERVICE_BEGIN) and service.endswith(report.SERVICE_END)
    assert "| POST /process requests/s, auth off, wrk -c64 | 880 |" in service
    assert "1 overhead" not in service


def test_readme_section_replaces_only_the_marked_table() -> None:
    readme = f"# kafka-llm\n\nintro\n\n{report.README_BEGIN}\nold table\n{report.README_END}\n\n## More\n"
    section = report.readme_section(_results(), "bench/results/LATEST.md")
    updated = report.replace_readme_section(readme, section)
    assert updated.startswith("# kafka-llm\n\nintro\n\n") and updated.endswith("\n\n## More\n")
    assert "old table" not in updated
    assert "revision 0123456789ab" in updated and "[LATEST.md](bench/results/LATEST.md)" in updated
    # Headline rows (those with a target, plus throughput) only.
    assert "| 1 overhead | worker / loopback limit | 30% | 1% | ≥ 50 % | **not met** |" in updated
    assert "| 1 overhead | requests/s (steady, 5-95 %) | 12000 | 400 |  |  |" in updated
    assert "worker CPU s per 1,000 requests" not in updated
    # Idempotent: a second run replaces the first run's table.
    assert report.replace_readme_section(updated, section) == updated


def test_readme_without_markers_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(ValueError, match="bench-table:begin"):
        report.replace_readme_section("# kafka-llm\n", "table")


def test_the_checkout_readme_has_the_table_markers() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.index(report.README_BEGIN) < readme.index(report.README_END)
    service = (REPO / "service" / "README.md").read_text()
    assert service.index(report.SERVICE_BEGIN) < service.index(report.SERVICE_END)
    # The service's figures come from the benchmark, not from prose typed beside it.
    measured = service[service.index("## Measured") :]
    assert "requests/s" not in measured.split(report.SERVICE_BEGIN)[0]


def test_smoke_run_of_every_scenario(tmp_path: Path) -> None:
    """``bench/run.py --smoke``: each scenario on its own stack, the native worker and the Python peer
    each finishing every request, results written as JSON, markdown and PNG, the README untouched."""
    readme_before = (REPO / "README.md").read_bytes()
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads(next(tmp_path.glob("*-smoke.json")).read_text())
    assert results["smoke"] is True and results["repeats"] == 1
    sc = results["scenarios"]
    assert set(sc) == {"overhead", "concurrency", "latency", "storm", "service", "exactly_once"}
    for key in ("overhead", "concurrency", "storm"):
        for side in ("core", "peer"):
            run = sc[key]["median"][side]
            assert run["complete"], (key, side, run)
    s1 = sc["overhead"]["median"]
    assert s1["core"]["ok"] == s1["peer"]["ok"] == results["sizes"]["s1_requests"]
    assert s1["loopback"]["requests_per_s"] > 0 and s1["core"]["cpu_us_per_request"] > 0
    storm = sc["storm"]["median"]
    assert storm["core"]["ok"] == results["sizes"]["s4_requests"] and storm["core"]["dlq"] == 0
    assert storm["core"]["retries"] > 0 and storm["core"]["rebalances"] == 0
    s5 = sc["service"]["median"]
    for label in ("auth_c16", "auth_c64", "open_c64"):
        assert s5[label]["requests_per_s"] > 0 and s5[label]["non_2xx"] == 0, (label, s5)
    assert s5["first_token"]["service_p50_ms"] > s5["first_token"]["provider_p50_ms"] > 0
    eos = sc["exactly_once"]["median"]
    assert eos["default"]["complete"] and eos["exactly_once"]["complete"]
    assert eos["exactly_once"]["ok"] == results["sizes"]["s6_requests"]
    assert eos["exactly_once"]["transactions"] > 0 and eos["default"]["transactions"] == 0
    md = (tmp_path / "LATEST.md").read_text()
    assert "| 1 overhead | kafka-llm / peer throughput |" in md
    assert (tmp_path / f"{results['date']}-smoke.png").stat().st_size > 0
    assert (REPO / "README.md").read_bytes() == readme_before
