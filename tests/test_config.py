from pathlib import Path

import pytest

from bot.config import bundled_demo_config, load_config, parse_duration, parse_size, read_token
from bot.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "digestbot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_loads_and_resolves_file_sources():
    config = load_config(bundled_demo_config(), env={})
    assert {s.id for s in config.sources} == {"reading-group", "paper-picks", "lab-news"}
    for source in config.sources:
        assert source.url.startswith("file:///")
        assert Path(source.url.removeprefix("file://")).exists()
    assert "hallucination" in config.topics
    assert config.token is None


def test_defaults_apply_and_ids_are_slugged(tmp_path):
    config = load_config(write(tmp_path, """
defaults: {interval: 20m, backfill: 5}
sources:
  - {name: "Hugging Face Papers!", url: "https://hf.example/rss", channels: ["123"]}
"""), env={})
    source = config.sources[0]
    assert source.id == "hugging-face-papers"
    assert source.interval.total_seconds() == 1200
    assert source.backfill == 5
    assert source.channels == (123,)


def test_env_substitution_and_token_from_env_or_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("file-token\n")
    path = write(tmp_path, """
sources:
  - {name: A, url: "${FEED_URL}", channels: [1]}
  - {name: B, url: "${OTHER:-https://default.example/feed}"}
""")
    config = load_config(path, env={"FEED_URL": "https://a.example/feed", "DISCORD_TOKEN_FILE": str(secret)})
    assert config.sources[0].url == "https://a.example/feed"
    assert config.sources[1].url == "https://default.example/feed"
    assert config.token == "file-token"
    assert read_token({"DISCORD_TOKEN": " abc "}) == "abc"
    assert "file-token" not in repr(config)


def test_missing_env_var_names_key(tmp_path):
    path = write(tmp_path, "sources:\n  - {name: A, url: '${NOPE}'}\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url: environment variable NOPE is not set"):
        load_config(path, env={})


def test_errors_name_file_and_key_path(tmp_path):
    path = write(tmp_path, """
defaults: {interval: 5s}
sources:
  - {name: A, url: "ftp://x", channels: [abc]}
  - {name: B, url: "https://x", colr: red}
""")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert str(path) in message
    assert "defaults.interval: must be at least 30s" in message
    assert "sources[0].url" in message
    assert "sources[0].channels" in message
    assert "sources[1].colr: unknown setting" in message


def test_ingest_settings_are_read_and_checked(tmp_path):
    config = load_config(write(tmp_path, "ingest: {processes: 2, parse_timeout: 30s}\nsources: []\n"), env={})
    assert config.ingest.processes == 2 and config.ingest.parse_timeout.total_seconds() == 30
    assert load_config(write(tmp_path, "sources: []\n"), env={}).ingest.parse_timeout.total_seconds() == 120
    with pytest.raises(ConfigError, match=r"ingest\.parse_timeout: .*longer than 0s"):
        load_config(write(tmp_path, "ingest: {parse_timeout: 0}\nsources: []\n"), env={})


def test_token_in_yaml_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"discord\.token"):
        load_config(write(tmp_path, "discord: {token: abc}\n"), env={})


def test_duplicate_source_ids_and_unknown_topics(tmp_path):
    with pytest.raises(ConfigError, match="same id"):
        load_config(write(tmp_path, "sources: [{name: A, url: 'https://a'}, {name: a, url: 'https://b'}]"),
                    env={})
    with pytest.raises(ConfigError, match="unknown topic 'nope'"):
        load_config(write(tmp_path, "topics: {llm: [llm]}\nsources: [{name: A, url: 'https://a', "
                          "topics: [nope]}]"), env={})


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="invalid YAML: line 2, column 1"):
        load_config(write(tmp_path, "sources: [\n"), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml", env={})
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"), env={})


def test_include_merges_topics_and_sources(tmp_path):
    write(tmp_path, "topics: {diffusion: {keywords: [diffusion, 扩散]}}\nsources: [{name: X, url: 'https://x'}]",
          name="more.yaml")
    config = load_config(write(tmp_path, "include: [more.yaml]\nsources: [{name: A, url: 'https://a'}]"),
                         env={})
    assert [s.id for s in config.sources] == ["a", "x"]
    assert config.topics["diffusion"].keywords == ("diffusion", "扩散")


def test_data_dir_env_moves_relative_database(tmp_path):
    config = load_config(write(tmp_path, "storage: {path: data/x.sqlite3}\n"),
                         env={"DIGESTBOT_DATA_DIR": "/data"})
    assert config.storage.path == Path("/data/x.sqlite3")
    assert config.storage.resolved_index_path == Path("/data/x.sqlite3.index")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), (90, 90), ("15m", 900), ("1h30m", 5400),
                                               ("2d", 172800), ("500ms", 0.5)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_parse_size():
    assert parse_size("10MB") == 10_000_000
    assert parse_size("1 MiB") == 1_048_576
    with pytest.raises(ValueError):
        parse_size("lots")


def test_shipped_example_config_is_valid():
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config" / "digestbot.example.yaml", env={})
    assert len(config.sources) == 2 and "hallucination" in config.topics
    assert config.discord.api_base == "https://discord.com/api/v10"
