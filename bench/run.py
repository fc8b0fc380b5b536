"""Runs the benchmarks of bench/README.md on a private local stack and writes the results.

    python bench/run.py [--quick] [--repeats N] [--scenarios 1,2,3,4,5,6] [--out bench/results]

Starts its own stack (Kafka in KRaft mode, Redis, the native mock provider) in a fresh state
directory, runs each scenario with the native worker and the Python asyncio peer side by side
(each a separate process), repeats it, and writes ``<out>/<date>[-quick].json``, a PNG of the
medians beside it and ``<out>/LATEST.md``; when ``<out>`` is the checkout's bench/results, the
README's table (between its bench-table markers) is replaced by this run's headline rows. Everything it starts
it stops by PID. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka_llm import _core
from kafka_llm._paths import cache_dir
from kafka_llm.devstack import Stack
from kllm_bench import machine, report, scenarios, workers

SCENARIOS = {
    "1": ("overhead", scenarios.scenario_overhead),
    "2": ("concurrency", scenarios.scenario_concurrency),
    "3": ("latency", scenarios.scenario_latency),
    "4": ("storm", scenarios.scenario_storm),
    "5": ("service", scenarios.scenario_service),
    "6": ("exactly_once", scenarios.scenario_exactly_once),
}
REPO = Path(__file__).resolve().parent.parent


def say(text: str) -> None:
    print(text, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller request counts (CI-sized, ~5 minutes)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few hundred requests per scenario: checks the harness end to end, figures mean nothing",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; medians are reported")
    parser.add_argument("--scenarios", default="1,2,3,4,5,6", help="comma-separated scenario numbers (1-6)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"), help="where results are written")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each request topic")
    parser.add_argument("--s1-handlers", type=int, help="maxHandlers and wrk connections of scenario 1")
    parser.add_argument(
        "--no-latest", action="store_true", help="do not overwrite <out>/LATEST.md and the README's table"
    )
    parser.add_argument(
        "--core-module",
        type=Path,
        help="another build of kafka_llm._core for the native worker (A/B runs against an earlier commit)",
    )
    parser.add_argument(
        "--kafka-property",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a librdkafka property for the native worker's kafka section (repeatable; for experiments)",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        parser.error(f"unknown scenario(s) {unknown}; choose from 1-6")
    if args.smoke and args.quick:
        parser.error("--smoke and --quick are exclusive")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if any("=" not in p for p in args.kafka_property):
        parser.error("--kafka-property takes NAME=VALUE")
    args.chosen = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(
        ["python bench/run.py", shlex.join(argv if argv is not None else sys.argv[1:])]
    ).strip()
    mode = "quick" if args.quick else "smoke" if args.smoke else "full"
    sizes = {"quick": scenarios.Sizes.quick, "smoke": scenarios.Sizes.smoke, "full": scenarios.Sizes}[mode]()
    if args.s1_handlers:
        sizes.s1_handlers = args.s1_handlers
    run_id = secrets.token_hex(3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    stem = today if mode == "full" else f"{today}-{mode}"

    facts = machine.describe()
    results: dict[str, Any] = {
        "date": today,
        "started_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "smoke": args.smoke,
        "repeats": args.repeats,
        "sizes": vars(sizes),
        "kafka_properties": args.kafka_property,
        "machine": facts,
        "git": machine.git_revision(str(REPO)),
        "core_libraries": _core.library_versions(),
        "scenarios": {},
    }
    state_dir = cache_dir() / "dev" / f"bench-{run_id}"
    say(f"== kafka-llm bench ({mode}, {args.repeats} repeats) ==")
    say(
        f"machine: {facts['cpus']} \u00d7 {facts['cpu_model']}, "
        f"load average {facts['load_average_at_start'][0]:.1f}"
    )
    # A run of some scenarios only writes its own files (and scenario 5's section of
    # service/README.md); LATEST.md and the README's table show complete runs.
    latest = not args.no_latest and set(args.chosen) == set(SCENARIOS)
    service_readme = not args.no_latest and "5" in args.chosen
    started = time.monotonic()
    with (
        Stack(state_dir, partitions=args.partitions, timeout=180, progress=lambda m: say(f"  {m}")) as stack,
        tempfile.TemporaryDirectory(prefix="kafka-llm-bench-") as workdir,
    ):
        info = stack.info
        say(f"stack: kafka {info.bootstrap_servers}, redis {info.redis_url}, mock {info.provider_url}")
        facts["busy_neighbours"] = machine.busy_neighbours(info.pids.values())
        if facts["busy_neighbours"]:
            say(
                "busy neighbours: "
                + ", ".join(f"{b['name']} ({b['cpu_percent']} %)" for b in facts["busy_neighbours"])
            )
        ctx = scenarios.Context(
            stack=info,
            workdir=Path(workdir),
            partitions=args.partitions,
            sizes=sizes,
            run_id=run_id,
            progress=say,
        )
        ctx.kafka_extra = dict(p.split("=", 1) for p in args.kafka_property)
        # One build for the whole run, whatever happens to the shared virtualenv meanwhile.
        results["package"] = workers.snapshot_package(Path(workdir) / "pkg", args.core_module)
        ctx.pythonpath = results["package"]["pythonpath"]
        say(f"core module: {results['package']['core_sha256']} built {results['package']['core_built']}")
        for number in args.chosen:
            key, run = SCENARIOS[number]
            t = time.monotonic()
            results["scenarios"][key] = run(ctx, args.repeats)
            results["scenarios"][key]["seconds"] = round(time.monotonic() - t, 1)
            _write(
                results, out, stem, command, latest=latest, service_readme=service_readme
            )  # partial results survive a crash
    results["seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = list(__import__("os").getloadavg())
    json_path, md = _write(results, out, stem, command, latest=latest, service_readme=service_readme)
    say(f"\n{md}")
    say(f"wrote {json_path}")
    return 0


def _write(
    results: dict[str, Any], out: Path, stem: str, command: str, *, latest: bool, service_readme: bool
) -> tuple[Path, str]:
    json_path = out / f"{stem}.json"
    results["json_name"] = json_path.name
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    png = out / f"{stem}.png"
    has_plot = report.plot(results, png)
    md = report.markdown(results, command, png.name if has_plot else None)
    (out / f"{stem}.md").write_text(md)
    in_repo = out.resolve() == (REPO / "bench" / "results").resolve()
    if latest:
        (out / "LATEST.md").write_text(md)
        if in_repo:
            readme = REPO / "README.md"
            section = report.readme_section(results, "bench/results/LATEST.md")
            readme.write_text(report.replace_readme_section(readme.read_text(), section))
    if service_readme and in_repo and _has_median(results, "service"):
        readme = REPO / "service" / "README.md"
        section = report.service_section(results, f"../bench/results/{stem}.md")
        readme.write_text(
            report.replace_readme_section(
                readme.read_text(), section, report.SERVICE_BEGIN, report.SERVICE_END
            )
        )
    return json_path, md


def _has_median(results: dict[str, Any], scenario: str) -> bool:
    return bool(results["scenarios"].get(scenario, {}).get("median"))


if __name__ == "__main__":
    sys.exit(main())
