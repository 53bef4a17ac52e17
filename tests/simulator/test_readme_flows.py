"""The README's curl walk-through, run as written against the installed console script."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
CONSOLE_SCRIPT = Path(sys.executable).parent / "centralmon-simulator"
DOCUMENTED_SIM = "SIM=http://127.0.0.1:8765"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None,
    reason="the README's flows need curl and jq",
)


def readme_curl_flows() -> str:
    """Return the shell block of the README section "The flows with curl"."""
    section = README.read_text(encoding="utf-8").split("### The flows with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README lost its curl walk-through"
    return block.group(1)


def json_values(text: str) -> list[Any]:
    """Decode every JSON value printed one after the other (curl adds no newline)."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


@pytest.fixture
def console_simulator() -> Iterator[str]:
    """Start ``centralmon-simulator`` as a user would; yield its base URL."""
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    base_url = next(line.split(":", 1)[1].strip() for line in process.stdout if "base URL:" in line)
    yield base_url
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()


def test_the_readme_curl_flows_work_end_to_end(console_simulator, tmp_path):
    script = readme_curl_flows()
    assert DOCUMENTED_SIM in script
    script = script.replace(DOCUMENTED_SIM, f"SIM={console_simulator}")

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    page = json.loads((tmp_path / "page.json").read_text())
    assert page["meta"]["api_version"] == "v2"
    assert page["meta"]["rate_limit"]["daily_remaining"] == 99
    assert len(page["data"]["logs"]) == 2
    urls = json.loads((tmp_path / "urls.json").read_text())["presigned_urls"]
    assert [entry["status"] for entry in urls] == ["completed"]
    counters = json_values(done.stdout)[-1]
    assert counters["token_requests"] == 1
    assert counters["batch_submissions"] == 1
    assert counters["routes"]["/v2/logs/scroll"]["calls"] == 2
