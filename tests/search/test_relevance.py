"""Search relevance on a hand-judged set of mixed Chinese/English machine-learning entries.

Entries (``relevance_entries.yaml``) carry no topics: each one is tagged at build time by
``bot.topics.TopicMatcher`` from the default topic set (``config/topics.yaml``), exactly as ingest
does, so topic-only queries here also test topic assignment.

Queries (``relevance_queries.yaml``) each have ``query`` text and/or a ``topic``, the ids judged
``relevant`` and a ``kind``: ``lexical`` (relevant entries contain the query's words) or ``cross``
(relevant entries include ones in the other language, reachable through topics).

Metrics, per query, over the top 10 results (``SearchRequest(limit=10)``):

- recall@10    = |relevant ∩ top10| / |relevant|
- precision@10 = |relevant ∩ top10| / min(10, |returned|); a query that returns nothing has
  precision 0 (every query here has relevant entries).
- R-precision  = |relevant ∩ top-|relevant|| / |relevant| (reported only): whether the relevant
  entries come first, which precision@10 cannot see when fewer than 10 entries match.

Floors: mean recall@10 ≥ 0.95 over ``lexical`` queries and ≥ 0.90 over all queries; mean
precision@10 ≥ 0.90 over all queries. Run with ``-s`` to see the per-query table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from bot.config import load_config
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex
from bot.topics import TopicMatcher

HERE = Path(__file__).parent
TOPICS_YAML = HERE.parents[1] / "config" / "topics.yaml"
TOP_K = 10
LEXICAL_RECALL_FLOOR = 0.95
RECALL_FLOOR = 0.90
PRECISION_FLOOR = 0.90


@dataclass(frozen=True)
class Judged:
    text: str
    topic: str | None
    kind: str
    relevant: frozenset[int]

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.text, f"[topic={self.topic}]" if self.topic else "") if p)


@dataclass(frozen=True)
class Scored:
    judged: Judged
    returned: tuple[int, ...]
    recall: float
    precision: float
    r_precision: float


def _load_yaml(name: str) -> dict:
    return yaml.safe_load((HERE / name).read_text(encoding="utf-8"))


def _matcher(tmp_dir: Path) -> TopicMatcher:
    config_file = tmp_dir / "digestbot.yaml"
    config_file.write_text(f"include: [{json.dumps(str(TOPICS_YAML.resolve()))}]\n", encoding="utf-8")
    return TopicMatcher.from_config(load_config(config_file, env={}).topics)


def _published(value: date | str) -> datetime:
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _entries(matcher: TopicMatcher) -> list[Entry]:
    entries = []
    for raw in _load_yaml("relevance_entries.yaml")["entries"]:
        title, summary = raw["title"].strip(), raw["summary"].strip()
        topics = matcher.assign(title=title, summary=summary, categories=(), source_topics=())
        entries.append(Entry(id=raw["id"], source_id=raw["source"], key=str(raw["id"]), title=title,
                             link=None, summary=summary, published=_published(raw["published"]),
                             topics=topics))
    return entries


def _queries() -> list[Judged]:
    return [Judged(str(q.get("query", "")), q.get("topic"), q["kind"], frozenset(q["relevant"]))
            for q in _load_yaml("relevance_queries.yaml")["queries"]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[SearchIndex, dict[int, Entry]]:
    entries = _entries(_matcher(tmp_path_factory.mktemp("relevance")))
    index = SearchIndex.open(None)
    index.add(entries)
    index.commit(max(e.id for e in entries if e.id is not None))
    return index, {e.id: e for e in entries if e.id is not None}


@pytest.fixture(scope="module")
def index(corpus) -> SearchIndex:
    return corpus[0]


def top_ids(index: SearchIndex, text: str = "", topic: str | None = None) -> tuple[int, ...]:
    page = index.search(SearchRequest(text=text, topic=topic, limit=TOP_K))
    return tuple(hit.entry_id for hit in page.hits)


def score(index: SearchIndex, judged: Judged) -> Scored:
    returned = top_ids(index, judged.text, judged.topic)
    found = len(judged.relevant & set(returned))
    recall = found / len(judged.relevant)
    precision = found / min(TOP_K, len(returned)) if returned else 0.0
    r_precision = len(judged.relevant & set(returned[:len(judged.relevant)])) / len(judged.relevant)
    return Scored(judged, returned, recall, precision, r_precision)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _table(results: list[Scored]) -> str:
    lines = [f"{'query':<36} {'kind':<8} {'R@10':>5} {'P@10':>5} {'R-P':>5}  missed / unjudged-returned"]
    for r in results:
        missed = sorted(r.judged.relevant - set(r.returned))
        extra = [i for i in r.returned if i not in r.judged.relevant]
        note = f"missed={missed} " if missed else ""
        note += f"extra={extra}" if extra else ""
        scores = f"{r.recall:5.2f} {r.precision:5.2f} {r.r_precision:5.2f}"
        lines.append(f"{r.judged.label:<36} {r.judged.kind:<8} {scores}  {note}")
    return "\n".join(lines)


def test_dataset_is_well_formed(corpus):
    _, by_id = corpus
    entries = _load_yaml("relevance_entries.yaml")["entries"]
    assert [e["id"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) >= 60 and len({e["source"] for e in entries}) >= 4
    queries = _queries()
    assert len(queries) >= 30
    for q in queries:
        assert q.kind in {"lexical", "cross"} and q.relevant and q.relevant <= set(by_id), q.label
        assert q.text or q.topic, q
    untagged = [i for i, e in by_id.items() if not e.topics]
    assert len(untagged) < len(by_id) // 5, untagged  # only distractors may be untagged


def test_relevance_floors(index):
    results = [score(index, q) for q in _queries()]
    lexical = [r for r in results if r.judged.kind == "lexical"]
    lexical_recall = _mean([r.recall for r in lexical])
    recall = _mean([r.recall for r in results])
    precision = _mean([r.precision for r in results])
    print("\n" + _table(results))
    print(f"\nmean recall@10 lexical ({len(lexical)} queries): {lexical_recall:.3f}  "
          f"all ({len(results)}): {recall:.3f}  mean precision@10 all: {precision:.3f}  "
          f"mean R-precision all: {_mean([r.r_precision for r in results]):.3f}")
    assert lexical_recall >= LEXICAL_RECALL_FLOOR, _table(lexical)
    assert recall >= RECALL_FLOOR, _table(results)
    assert precision >= PRECISION_FLOOR, _table(results)


def test_headline_diffusion_finds_the_sde_entry(corpus):
    index, by_id = corpus
    found = [by_id[i].title for i in top_ids(index, "diffusion")]
    assert any("Diffusion Models from SDE" in title for title in found), found


def test_headline_gqa_finds_the_mha_mqa_gqa_entry(corpus):
    index, by_id = corpus
    found = [by_id[i].title for i in top_ids(index, "GQA")]
    assert any(all(w in title for w in ("MHA", "MQA", "GQA")) for title in found), found


def test_headline_chinese_hallucination_finds_a_chinese_entry(corpus):
    index, by_id = corpus
    found = [by_id[i] for i in top_ids(index, "幻觉")]
    assert any("幻觉" in e.title + e.summary for e in found), [e.title for e in found]
