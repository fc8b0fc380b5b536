"""The documentation stays inside the repository and in step with the code: every relative link
of the READMEs and of docs/ points to a file that exists (and every ``#anchor`` to one of its
headings), no file links outside the repository, and every metric the core and the service
register is documented in docs/operations.md. Needs neither the built package nor the stack."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        REPO / "bench" / "README.md",
        REPO / "service" / "README.md",
        REPO / "notebooks" / "README.md",
    ]
)
OPERATIONS = REPO / "docs" / "operations.md"

_FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(
    r"!?\[(?:[^\]\n]|\][^(\n])*\]"  # [text], ![alt]
    r"\(\s*(?:<([^>\n]+)>|([^)\s]+))"  # (target) or (<target with spaces>)
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"  # an optional title
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code, where nothing is a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of the inline links and images of a Markdown text."""
    return [bracketed or bare for bracketed, bare in _LINK.findall(_prose(text))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup and punctuation dropped, lower case, spaces to dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"[`*]|<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(document: Path) -> list[str]:
    problems = []
    for target in links(document.read_text(encoding="utf-8")):
        if _SCHEME.match(target):
            continue  # http(s), mailto: outside the scope of this check
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.is_relative_to(REPO):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: {resolved.relative_to(REPO)} does not exist")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    return problems


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
    ).stdout
    return [REPO / name for name in listed.decode().split("\0") if name]


def test_the_link_checker_sees_links_anchors_and_code() -> None:
    text = (
        "See [a](docs/a.md#two-words), ![img](x.png 'title') and [b](<c d.md>).\n"
        "`[not](a-link.md)`\n```\n[not](either.md)\n```\n[web](https://example.com)"
    )
    assert links(text) == ["docs/a.md#two-words", "x.png", "c d.md", "https://example.com"]
    assert slug("What `kafka-llm` is, and *why*") == "what-kafka-llm-is-and-why"
    assert slug("Replay, dead letters and batch") == "replay-dead-letters-and-batch"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(document: Path) -> None:
    assert document.exists(), f"{document.relative_to(REPO)} is missing"
    assert broken_links(document) == []


def test_no_markdown_file_links_outside_the_repository() -> None:
    problems = {}
    for path in tracked_files():
        if path.suffix == ".md" and path.exists():
            outside = [p for p in broken_links(path) if "outside the repository" in p]
            if outside:
                problems[str(path.relative_to(REPO))] = outside
    assert problems == {}


def test_no_file_refers_to_the_design_page_outside_the_repository() -> None:
    needle = b"../" + b"shared"  # spelled in two parts so that this file does not match itself
    found = [
        str(path.relative_to(REPO))
        for path in tracked_files()
        if path.is_file() and needle in path.read_bytes()
    ]
    assert found == []


def _core_metric_names() -> set[str]:
    source = (REPO / "cpp" / "src" / "metrics" / "pipeline_metrics.cpp").read_text(encoding="utf-8")
    return set(re.findall(r"\bkafka_llm_[a-z0-9_]+", source))


def _service_metric_names() -> set[str]:
    source = (REPO / "python" / "kafka_llm" / "service" / "metrics.py").read_text(encoding="utf-8")
    names = set()
    for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"(kafka_llm_[a-z0-9_]+)\"", source):
        names.add(f"{name}_total" if kind == "Counter" else name)  # prometheus_client adds _total
    return names


@pytest.mark.parametrize(
    ("origin", "names"),
    [("cpp/src/metrics/pipeline_metrics.cpp", _core_metric_names()), ("service", _service_metric_names())],
    ids=["core", "service"],
)
def test_every_registered_metric_is_in_the_operations_page(origin: str, names: set[str]) -> None:
    assert len(names) >= 10, f"found only {sorted(names)} in {origin}: has the registration changed?"
    documented = OPERATIONS.read_text(encoding="utf-8")
    missing = sorted(n for n in names if not re.search(rf"`{n}`", documented))
    assert missing == [], f"metrics of {origin} missing from docs/operations.md"
