"""A client generated from the served document drives a live server: what an integrator gets.

openapi-python-client (pinned in tests/support/client-generator.txt) is
installed in a virtual environment this test makes, generates a client from
/api/v1/openapi.json, and a script run in that environment creates a link
with a plain-dict metadata, lists by external_id, gets and revokes it, and
reads a 404 and a 422 as typed problems.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.apispec import seed_account
from tests.support.live import live_server

GENERATOR = Path(__file__).parent / "support" / "client-generator.txt"

DRIVER = """
import json, sys
from oncecal_client import AuthenticatedClient
from oncecal_client.api.default import (
    create_one_time_link, get_one_time_link, list_one_time_links, revoke_one_time_link,
)
from oncecal_client.models import Link, LinkCreate, Problem

url, key, slug = sys.argv[1:]
client = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
metadata = {"deal": 4711, "stage": "demo", "tags": ["a", "b"], "owner": {"id": 7}}
made = create_one_time_link.sync(
    client=client, body=LinkCreate(calendar=slug, external_id="crm-4711", metadata=metadata)
)
assert isinstance(made, Link), made
listed = list_one_time_links.sync(client=client, external_id="crm-4711")
got = get_one_time_link.sync(client=client, link_id=made.id)
revoked = revoke_one_time_link.sync(client=client, link_id=made.id)
missing = get_one_time_link.sync(client=client, link_id=2_000_000_000)
invalid = create_one_time_link.sync(client=client, body=LinkCreate(calendar=slug, max_uses=0))
print(json.dumps({
    "made": made.to_dict(),
    "listed": [item.id for item in listed.items],
    "got": got.to_dict(),
    "revoked": revoked.status.value,
    "missing": [type(missing).__name__, missing.status],
    "invalid": [type(invalid).__name__, invalid.status, invalid.errors],
}))
"""


@pytest.fixture(scope="session")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the pinned generator (and so httpx and attrs, which its clients need)."""
    venv = tmp_path_factory.mktemp("client-generator") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(GENERATOR),
        ],
        check=True,
        timeout=600,
    )
    return venv


def test_a_generated_client_creates_lists_gets_and_revokes_and_reads_problems(
    generator: Path, tmp_path: Path
) -> None:
    with live_server(f"sqlite:///{tmp_path / 'oncecal.sqlite3'}") as server:
        account = seed_account(server.app)
        document = tmp_path / "openapi.json"
        document.write_text(requests.get(f"{server.url}/api/v1/openapi.json", timeout=10).text)
        config = tmp_path / "generator.yaml"
        config.write_text("post_hooks: []\n")  # no formatter to run over the client
        generated = subprocess.run(
            [
                str(generator / "bin" / "openapi-python-client"),
                "generate",
                "--path",
                str(document),
                "--output-path",
                str(tmp_path / "client" / "oncecal_client"),
                "--meta",
                "none",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        said = generated.stdout + generated.stderr
        assert generated.returncode == 0, said
        assert "warning" not in said.lower(), said

        driver = tmp_path / "driver.py"
        driver.write_text(DRIVER)
        run = subprocess.run(
            [
                str(generator / "bin" / "python"),
                str(driver),
                f"{server.url}/api/v1",
                account.key,
                account.slug,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(tmp_path / "client")},
        )
        assert run.returncode == 0, run.stdout + run.stderr
        seen = json.loads(run.stdout.strip().splitlines()[-1])

    made = seen["made"]
    assert made["metadata"] == {"deal": 4711, "stage": "demo", "tags": ["a", "b"], "owner": {"id": 7}}
    assert made["external_id"] == "crm-4711" and made["url"].startswith(server.url + "/l/")
    assert seen["listed"] == [made["id"]]
    assert seen["got"] == made
    assert seen["revoked"] == "revoked"
    assert seen["missing"] == ["Problem", 404]
    assert seen["invalid"][:2] == ["Problem", 422] and set(seen["invalid"][2]) == {"max_uses"}
