"""The C++ integration tests (`ctest -L integration`), one pytest test each, against the stack.

The build dir is ``$KAFKA_LLM_CPP_BUILD_DIR`` (default ``build/dev`` under the repository root).
A missing build dir fails collection. When ctest lists no integration test, no test is generated,
unless ``KAFKA_LLM_REQUIRE_CPP_INTEGRATION=1``, which turns that into a failing test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kafka_llm.devstack import StackInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
CTEST_TIMEOUT = 240  # per C++ test, inside ctest; pytest-timeout allows 300 s per test
_LISTED_TEST = re.compile(r"^\s*Test\s+#\d+:\s+(\S.*?)\s*$")
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def _build_dir() -> Path:
    path = Path(os.environ.get("KAFKA_LLM_CPP_BUILD_DIR", "build/dev"))
    return path if path.is_absolute() else REPO_ROOT / path


def _ctest() -> str:
    found = shutil.which("ctest")
    if found is None:
        pytest.fail("ctest (CMake) is not on PATH; it is needed to run the C++ tests", pytrace=False)
    return found


def _list_integration_tests(build_dir: Path) -> list[str]:
    """Names from ``ctest -N -L integration`` in ``build_dir``; fails collection if it cannot."""
    if not build_dir.is_dir():
        pytest.fail(
            f"C++ build dir {build_dir} does not exist: build it first (`make cpp`, or "
            "`cmake --preset dev && cmake --build --preset dev`) or point "
            "KAFKA_LLM_CPP_BUILD_DIR at an existing build",
            pytrace=False,
        )
    result = subprocess.run(
        [_ctest(), "--test-dir", str(build_dir), "-N", "-L", "integration"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`ctest -N -L integration` failed in {build_dir} (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return [m.group(1) for line in result.stdout.splitlines() if (m := _LISTED_TEST.match(line))]


BUILD_DIR = _build_dir()
CPP_TESTS = _list_integration_tests(BUILD_DIR)


def _exactly(name: str) -> str:
    """A ctest ``-R`` regular expression matching ``name`` and nothing else."""
    return "^" + _REGEX_SPECIAL.sub(r"\\\1", name) + "$"


if CPP_TESTS:

    @pytest.mark.stack
    @pytest.mark.parametrize("ctest_name", CPP_TESTS, ids=CPP_TESTS)
    def test_cpp_integration(ctest_name: str, stack: StackInfo) -> None:
        result = subprocess.run(
            [
                _ctest(),
                "--test-dir",
                str(BUILD_DIR),
                "-R",
                _exactly(ctest_name),
                "--output-on-failure",
                "--no-tests=error",
                "--timeout",
                str(CTEST_TIMEOUT),
            ],
            env={**os.environ, **stack.env()},
            capture_output=True,
            text=True,
            timeout=CTEST_TIMEOUT + 30,
            check=False,
        )
        output = f"{result.stdout}{result.stderr}"
        assert result.returncode == 0, f"C++ test {ctest_name} failed:\n{output}"
        assert "0 tests failed out of 1" in result.stdout, f"expected exactly one test:\n{output}"

elif os.environ.get("KAFKA_LLM_REQUIRE_CPP_INTEGRATION") == "1":

    def test_cpp_integration_tests_are_listed() -> None:
        assert CPP_TESTS, (
            f"KAFKA_LLM_REQUIRE_CPP_INTEGRATION=1, but `ctest -N -L integration` in {BUILD_DIR} "
            "lists no test: are the integration tests built?"
        )
