"""The results table (markdown) and plots (PNG) from one results document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = {
    "s1_vs_peer": 10.0,
    "s1_vs_loopback": 0.5,
    "s1_cpu_us": 50.0,
    "s2_vs_ideal": 0.9,
    "s2_kib": 16.0,
    "s3_p99_ms_at_1000": 5.0,
    "s4_vs_ideal": 1.2,
}


_S5_PROCESS = "POST /process requests/s, auth on, 1 uvicorn worker, wrk -c16 / -c64"
_S5_TTFT = "streamed time to first token p50, sequential: service / provider alone"
_MS = "{:.1f}"


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _f(value: Any, fmt: str = "{:.0f}", unit: str = "") -> str:
    if value is None:
        return "n/a"
    return fmt.format(value) + unit


def _verdict(value: Any, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "**not met**"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(scenario, metric, kafka-llm, peer, target, verdict) rows from the medians."""
    out: list[tuple[str, str, str, str, str, str]] = []
    sc = results.get("scenarios", {})
    if s1 := _get(sc, "overhead", "median"):
        core, peer = s1.get("core", {}), s1.get("peer", {})
        out.append(
            (
                "1 overhead",
                "requests/s (steady, 5-95 %)",
                _f(core.get("requests_per_s")),
                _f(peer.get("requests_per_s")),
                "",
                "",
            )
        )
        out.append(
            (
                "1 overhead",
                "kafka-llm / peer throughput",
                _f(s1.get("core_vs_peer"), "{:.1f}", "\u00d7"),
                "",
                "≥ 10\u00d7",
                _verdict(s1.get("core_vs_peer"), TARGETS["s1_vs_peer"], True),
            )
        )
        out.append(
            (
                "1 overhead",
                "loopback limit (wrk → mock, same concurrency)",
                _f(_get(s1, "loopback", "requests_per_s")),
                "",
                "",
                "",
            )
        )
        out.append(
            (
                "1 overhead",
                "worker / loopback limit",
                _f(s1.get("core_vs_loopback"), "{:.0%}"),
                _f(s1.get("peer_vs_loopback"), "{:.0%}"),
                "≥ 50 %",
                _verdict(s1.get("core_vs_loopback"), TARGETS["s1_vs_loopback"], True),
            )
        )
        out.append(
            (
                "1 overhead",
                "worker CPU per request",
                _f(core.get("cpu_us_per_request"), unit=" µs"),
                _f(peer.get("cpu_us_per_request"), unit=" µs"),
                "≤ 50 µs",
                _verdict(core.get("cpu_us_per_request"), TARGETS["s1_cpu_us"], False),
            )
        )
        out.append(
            (
                "1 overhead",
                "worker CPU s per 1,000 requests",
                _f(core.get("cpu_s_per_1000"), "{:.3f}", " s"),
                _f(peer.get("cpu_s_per_1000"), "{:.3f}", " s"),
                "",
                "",
            )
        )
    if s2 := _get(sc, "concurrency", "median"):
        ideal = _get(sc, "concurrency", "settings", "ideal_requests_per_s")
        core, peer = s2.get("core", {}), s2.get("peer", {})
        out.append(
            (
                "2 concurrency",
                f"requests/s (ideal {_f(ideal)})",
                _f(core.get("requests_per_s")),
                _f(peer.get("requests_per_s")),
                "",
                "",
            )
        )
        out.append(
            (
                "2 concurrency",
                "share of the ideal rate",
                _f(core.get("vs_ideal"), "{:.0%}"),
                _f(peer.get("vs_ideal"), "{:.0%}"),
                "≥ 90 %",
                _verdict(core.get("vs_ideal"), TARGETS["s2_vs_ideal"], True),
            )
        )
        out.append(
            (
                "2 concurrency",
                "RSS growth per in-flight request",
                _f(core.get("rss_kib_per_inflight"), "{:.1f}", " KiB"),
                _f(peer.get("rss_kib_per_inflight"), "{:.1f}", " KiB"),
                "≤ 16 KiB",
                _verdict(core.get("rss_kib_per_inflight"), TARGETS["s2_kib"], False),
            )
        )
        out.append(
            (
                "2 concurrency",
                "peak in flight",
                _f(core.get("peak_inflight")),
                _f(peer.get("peak_inflight")),
                "",
                "",
            )
        )
    if s3 := _get(sc, "latency", "median"):
        for rate in _get(sc, "latency", "settings", "rates") or []:
            cell = s3.get(str(rate), {})
            for path, label in (("to_response", "response record"), ("to_redis", "result in Redis")):
                c, p = _get(cell, "core", path) or {}, _get(cell, "peer", path) or {}

                def trio(d: dict[str, Any]) -> str:
                    return " / ".join(_f(d.get(f"p{q}_ms"), "{:.1f}") for q in (50, 95, 99)) + " ms"

                sustained = {kind: _get(cell, kind, "sustained") for kind in ("core", "peer")}
                core_text = trio(c) + ("" if sustained["core"] else " (not sustained)")
                peer_text = trio(p) + ("" if sustained["peer"] else " (not sustained)")
                target, verdict = "", ""
                if rate == 1000 and path == "to_response":
                    target = "p99 ≤ 5 ms"
                    verdict = _verdict(c.get("p99_ms"), TARGETS["s3_p99_ms_at_1000"], False)
                out.append(
                    (
                        "3 added latency",
                        f"{rate}/s → {label}, p50 / p95 / p99",
                        core_text,
                        peer_text,
                        target,
                        verdict,
                    )
                )
        stream = s3.get("stream", {})
        rate = _get(sc, "latency", "settings", "stream_rate")
        c, p = (
            _get(stream, "core", "added_to_first_token") or {},
            _get(stream, "peer", "added_to_first_token") or {},
        )
        out.append(
            (
                "3 added latency",
                f"streamed at {rate}/s: time to first token minus provider latency, p50 / p99",
                f"{_f(c.get('p50_ms'), '{:.1f}')} / {_f(c.get('p99_ms'), '{:.1f}')} ms",
                f"{_f(p.get('p50_ms'), '{:.1f}')} / {_f(p.get('p99_ms'), '{:.1f}')} ms",
                "",
                "",
            )
        )
    if s4 := _get(sc, "storm", "median"):
        core, peer = s4.get("core", {}), s4.get("peer", {})
        out.append(
            (
                "4 429 storm",
                "completion time / ideal",
                _f(core.get("vs_ideal"), "{:.2f}", "\u00d7"),
                _f(peer.get("vs_ideal"), "{:.2f}", "\u00d7"),
                "≤ 1.2\u00d7",
                _verdict(core.get("vs_ideal"), TARGETS["s4_vs_ideal"], False),
            )
        )
        out.append(
            (
                "4 429 storm",
                "completion time (ideal)",
                f"{_f(core.get('completion_s'), '{:.1f}')} s ({_f(core.get('ideal_s'), '{:.1f}')} s)",
                f"{_f(peer.get('completion_s'), '{:.1f}')} s ({_f(peer.get('ideal_s'), '{:.1f}')} s)",
                "",
                "",
            )
        )
        out.append(
            (
                "4 429 storm",
                "rebalances after the initial assignment",
                _f(core.get("rebalances")),
                _f(peer.get("rebalances")),
                "0",
                "met" if core.get("rebalances") == 0 else "**not met**",
            )
        )
        out.append(
            (
                "4 429 storm",
                "retries (worker) / provider calls beyond one per request",
                f"{_f(core.get('retries'))} / {_f(core.get('provider_calls_beyond_one'))}",
                f"{_f(peer.get('retries'))} / {_f(peer.get('provider_calls_beyond_one'))}",
                "",
                "",
            )
        )
    if s5 := _get(sc, "service", "median"):
        on16, on64, off64 = s5.get("auth_c16", {}), s5.get("auth_c64", {}), s5.get("open_c64", {})
        ttft = s5.get("first_token", {})
        out += [
            (
                "5 HTTP service",
                _S5_PROCESS,
                f"{_f(on16.get('requests_per_s'))} / {_f(on64.get('requests_per_s'))}",
                "",
                "",
                "",
            ),
            (
                "5 HTTP service",
                "POST /process requests/s, auth off, wrk -c64",
                _f(off64.get("requests_per_s")),
                "",
                "",
                "",
            ),
            (
                "5 HTTP service",
                "POST /process p50 / p99, auth on, -c16 / -c64",
                f"{_f(on16.get('p50_ms'), '{:.1f}')} / {_f(on16.get('p99_ms'), '{:.1f}')} ms, "
                f"{_f(on64.get('p50_ms'), '{:.1f}')} / {_f(on64.get('p99_ms'), '{:.1f}')} ms",
                "",
                "",
                "",
            ),
            (
                "5 HTTP service",
                "service CPU per request, auth on, -c64",
                _f(on64.get("cpu_us_per_request"), unit=" µs"),
                "",
                "",
                "",
            ),
            (
                "5 HTTP service",
                _S5_TTFT,
                f"{_f(ttft.get('service_p50_ms'), _MS)} / {_f(ttft.get('provider_p50_ms'), _MS)} ms "
                f"(+{_f(ttft.get('added_p50_ms'), _MS)} ms)",
                "",
                "",
                "",
            ),
        ]
    elif _get(sc, "service", "error"):
        out.append(("5 HTTP service", "POST /process", "failed: see the JSON", "", "", "not measured"))
    if s6 := _get(sc, "exactly_once", "median"):
        default, eos = s6.get("default", {}), s6.get("exactly_once", {})
        d_e2e, e_e2e = default.get("end_to_end", {}), eos.get("end_to_end", {})
        out.append(
            (
                "6 exactly-once",
                "requests/s: exactly-once / default mode (the peer column: default)",
                f"{_f(eos.get('requests_per_s'))} "
                f"({_f(s6.get('throughput_eos_vs_default'), '{:.2f}', chr(215))})",
                _f(default.get("requests_per_s")),
                "",
                "",
            )
        )
        out.append(
            (
                "6 exactly-once",
                "CPU per request: exactly-once / default mode",
                _f(eos.get("cpu_us_per_request"), unit=" µs"),
                _f(default.get("cpu_us_per_request"), unit=" µs"),
                "",
                "",
            )
        )
        out.append(
            (
                "6 exactly-once",
                "send to committed response p50 / p99: exactly-once / default mode",
                f"{_f(e_e2e.get('p50_ms'), '{:.0f}')} / {_f(e_e2e.get('p99_ms'), '{:.0f}')} ms",
                f"{_f(d_e2e.get('p50_ms'), '{:.0f}')} / {_f(d_e2e.get('p99_ms'), '{:.0f}')} ms",
                "",
                "",
            )
        )
    return out


def markdown(results: dict[str, Any], command: str, plot_name: str | None) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmark results ({results['date']})",
        "",
        f"Command: `{command}` — {results['repeats']} repeats, medians shown"
        f"{' (quick mode: smaller request counts)' if results.get('quick') else ''}"
        f"{' (smoke mode: a check of the harness; the figures mean nothing)' if results.get('smoke') else ''}"
        ".",
        "",
        f"Machine: {m.get('cpus')} \u00d7 {m.get('cpu_model') or 'CPU'}, {m.get('memory_gib')} GiB, Linux "
        f"{m.get('kernel')}, Python {m.get('python')}. **Co-located**: the Kafka broker, Redis, the mock "
        "provider, the load generator and the worker under test share these cores"
        + (
            f", and so did other work (load average {m['load_average_at_start'][0]:.1f} at the start"
            f"{_neighbours(m)})"
            if m.get("load_average_at_start")
            else ""
        )
        + ". Figures are ratios measured side by side in one run; absolute numbers move with the load.",
        "",
        "| scenario | metric | kafka-llm | Python asyncio peer | target | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows(results):
        lines.append("| " + " | ".join(row) + " |")
    package = results.get("package") or {}
    build = f", core module {package['core_sha256']} built {package['core_built']}" if package else ""
    lines += [
        "",
        f"Revision {results.get('git', {}).get('commit', '')[:12]}{build} (one build for every worker "
        f"of the run); raw figures: `{results.get('json_name', '')}`; where the core's time goes: "
        "[`bench/PROFILE.md`](../PROFILE.md).",
    ]
    if plot_name:
        lines += ["", f"![benchmark plots]({plot_name})"]
    lines += ["", "How each figure is measured: `bench/README.md`.", ""]
    return "\n".join(lines)


README_BEGIN = "<!-- bench-table:begin (written by bench/run.py) -->"
README_END = "<!-- bench-table:end -->"
_README_EXTRA = ("requests/s (steady, 5-95 %)", _S5_PROCESS, _S5_TTFT)


def readme_section(results: dict[str, Any], latest_link: str) -> str:
    """The table the README shows: the headline rows of ``rows`` with where they come from."""
    m = results["machine"]
    commit = results.get("git", {}).get("commit", "")[:12]
    lines = [
        README_BEGIN,
        f"Latest `make bench` ({results['date']}, revision {commit}, "
        f"{'quick mode, ' if results.get('quick') else ''}{results['repeats']} repeat(s), medians; "
        f"{m.get('cpus')} cores shared by the broker, Redis, the mock provider, the load generator and "
        f"the worker; load average {(m.get('load_average_at_start') or [0.0])[0]:.1f} at the start). "
        f"Full table, plots and the machine: [{Path(latest_link).name}]({latest_link}).",
        "",
        "| scenario | metric | kafka-llm | Python asyncio peer | target | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    headline = [row for row in rows(results) if row[4] or row[5] or row[1] in _README_EXTRA]
    lines += ["| " + " | ".join(row) + " |" for row in headline]
    lines.append(README_END)
    return "\n".join(lines)


def replace_readme_section(
    readme: str, section: str, begin_marker: str = README_BEGIN, end_marker: str = README_END
) -> str:
    """``readme`` with the text between the two markers replaced by ``section``.

    Raises ValueError when the markers are missing or out of order (the README was edited by hand)."""
    begin, end = readme.find(begin_marker), readme.find(end_marker)
    if begin < 0 or end < begin:
        raise ValueError(f"README has no {begin_marker!r} ... {end_marker!r} section")
    return readme[:begin] + section + readme[end + len(end_marker) :]


SERVICE_BEGIN = "<!-- service-bench:begin (written by bench/run.py) -->"
SERVICE_END = "<!-- service-bench:end -->"


def service_section(results: dict[str, Any], results_link: str) -> str:
    """What service/README.md shows of scenario 5: its rows, with the run they come from."""
    m = results["machine"]
    commit = results.get("git", {}).get("commit", "")[:12]
    lines = [
        SERVICE_BEGIN,
        f"Scenario 5 of `make bench` ({results['date']}, revision {commit}, "
        f"{'quick mode, ' if results.get('quick') else ''}{results['repeats']} repeat(s), medians; "
        f"{m.get('cpus')} cores shared by the broker, Redis, the mock provider, wrk and the service; load "
        f"average {(m.get('load_average_at_start') or [0.0])[0]:.1f} at the start; "
        f"[the run]({results_link})):",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    lines += [f"| {row[1]} | {row[2]} |" for row in rows(results) if row[0] == "5 HTTP service"]
    lines.append(SERVICE_END)
    return "\n".join(lines)


def _neighbours(m: dict[str, Any]) -> str:
    busy = m.get("busy_neighbours") or []
    if not busy:
        return ""
    names = ", ".join(f"{b['name']} {b['cpu_percent']} %" for b in busy[:4])
    return f"; busy at the start: {names}"


def plot(results: dict[str, Any], path: Path) -> bool:
    """One PNG with a panel per measured scenario; False when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = results.get("scenarios", {})
    panels = [name for name in ("overhead", "concurrency", "latency", "storm") if _get(sc, name, "median")]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=80, squeeze=False)
    colors = {"core": "#1f77b4", "peer": "#ff7f0e", "limit": "#7f7f7f"}
    for ax, name in zip(axes[0], panels, strict=True):
        med = sc[name]["median"]
        if name == "overhead":
            labels = ["kafka-llm", "Python peer", "loopback limit"]
            values = [
                _get(med, "core", "requests_per_s"),
                _get(med, "peer", "requests_per_s"),
                _get(med, "loopback", "requests_per_s"),
            ]
            ax.bar(labels, [v or 0 for v in values], color=[colors["core"], colors["peer"], colors["limit"]])
            ax.set_title("1: requests/s, mock latency 0")
        elif name == "concurrency":
            ideal = _get(sc, "concurrency", "settings", "ideal_requests_per_s") or 0
            ax.bar(
                ["kafka-llm", "Python peer"],
                [_get(med, "core", "requests_per_s") or 0, _get(med, "peer", "requests_per_s") or 0],
                color=[colors["core"], colors["peer"]],
            )
            ax.axhline(ideal, color=colors["limit"], linestyle="--", label=f"ideal {ideal:.0f}/s")
            ax.legend(loc="upper right", fontsize=8)
            ax.set_title("2: requests/s, log-normal 1 s")
        elif name == "latency":
            rates = _get(sc, "latency", "settings", "rates") or []
            for kind in ("core", "peer"):
                for q, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
                    ys = [_get(med, str(r), kind, "to_response", q) for r in rates]
                    ax.plot(
                        rates,
                        [y if y is not None else float("nan") for y in ys],
                        style,
                        color=colors[kind],
                        label=f"{'kafka-llm' if kind == 'core' else 'peer'} {q[:3]}",
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("requests/s")
            ax.set_ylabel("added ms")
            ax.legend(fontsize=7)
            ax.set_title("3: added latency to the response")
        elif name == "storm":
            kinds = ["core", "peer"]
            ax.bar(
                [0, 2],
                [_get(med, k, "completion_s") or 0 for k in kinds],
                color=[colors[k] for k in kinds],
                label="completion",
            )
            ax.bar(
                [1, 3], [_get(med, k, "ideal_s") or 0 for k in kinds], color=colors["limit"], label="ideal"
            )
            ax.set_xticks([0.5, 2.5], ["kafka-llm", "Python peer"])
            ax.set_ylabel("seconds")
            ax.legend(fontsize=8)
            ax.set_title("4: 429 storm completion")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
