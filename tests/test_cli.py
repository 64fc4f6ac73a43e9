"""The command line as a new user meets it: the bundled demo, check, search --json, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def digestbot(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DIGESTBOT_"))}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout, not an install
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh directory where the README's run command has been run once."""
    folder = tmp_path_factory.mktemp("demo")
    result = digestbot("run", "--dry-run", "--once", cwd=folder)
    assert result.returncode == 0, result.stderr
    (folder / "first-run.txt").write_text(result.stdout)
    return folder


def test_dry_run_prints_the_digest(demo_dir: Path) -> None:
    out = (demo_dir / "first-run.txt").read_text()
    assert "INCOMING TRANSMISSION · LATEST UPDATES" in out
    assert "🔖 The Llama 3 Herd of Models — https://ai.meta.com/research/publications/" in out
    assert "FlashAttention的关键创新" in out
    assert "大模型幻觉" not in out  # older than the newest 3 (backfill): stored, not posted
    assert (demo_dir / "data" / "demo.sqlite3").exists()


def test_second_run_posts_nothing_again(demo_dir: Path) -> None:
    result = digestbot("run", "--dry-run", "--once", cwd=demo_dir)
    assert result.returncode == 0
    assert "🔖" not in result.stdout
    assert "not modified" in result.stderr


def test_search_json_finds_stored_entries(demo_dir: Path) -> None:
    for query, expected in [("幻觉", "大模型幻觉：成因与缓解"),
                            ("diffusion", "Diffusion Models from SDE: a unified view"),
                            ("GQA", "MHA、MQA 与 GQA：多头注意力的三种变体"),
                            ("幻覺", "大模型幻觉：成因与缓解")]:
        result = digestbot("search", query, "--json", cwd=demo_dir)
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert rows and rows[0]["title"] == expected, (query, rows)
        assert set(rows[0]) >= {"title", "link", "source", "published", "topics", "score"}


def test_search_by_topic_and_readable_output(demo_dir: Path) -> None:
    result = digestbot("search", "--topic", "diffusion", cwd=demo_dir)
    assert result.returncode == 0
    assert "1. Diffusion Models from SDE" in result.stdout
    result = digestbot("search", "--topic", "nope", cwd=demo_dir)
    assert result.returncode == 2 and "no topic called 'nope'" in result.stderr


def test_check_summarises_sources_and_routes(demo_dir: Path) -> None:
    result = digestbot("check", cwd=demo_dir)
    assert result.returncode == 0
    assert "sources: 3" in result.stdout and "routes: 4" in result.stdout
    assert "morning-digest: digest 0 9 * * mon-fri (Asia/Shanghai)" in result.stdout
    assert "token NOT set" in result.stdout


def test_run_without_token_explains_itself(tmp_path: Path) -> None:
    result = digestbot("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr and "--dry-run" in result.stderr


def test_bad_config_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("sources:\n  - {name: A, url: 'gopher://x'}\n")
    result = digestbot("check", "--config", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml: sources[0].url: must be an http(s):// URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_never_printed(tmp_path: Path) -> None:
    result = digestbot("check", cwd=tmp_path, env={"DISCORD_TOKEN": "super-secret-token-value"})
    assert "super-secret-token-value" not in result.stdout + result.stderr
    assert "token set" in result.stdout


def test_python_dash_m_equals_console_script(tmp_path: Path) -> None:
    result = subprocess.run(["digestbot", "--version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip("console script not installed (pip install -e .)")
    assert result.stdout == digestbot("--version", cwd=tmp_path).stdout
