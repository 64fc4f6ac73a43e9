from __future__ import annotations

import discord
from hypothesis import given
from hypothesis import strategies as st

from bot.discord_adapter.views import (
    CUSTOM_ID_LIMIT,
    NO_PAGING_NOTE,
    SHORTENED_NOTE,
    TEMPLATE,
    PageButton,
    PageQuery,
    fit_query,
    page_view,
)


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def decode(custom_id: str) -> tuple[PageQuery, int]:
    match = TEMPLATE.fullmatch(custom_id)
    assert match is not None, custom_id
    return PageQuery.decode(match.group("kind"), match.group("state")), int(match.group("page"))


def test_round_trip_short_query() -> None:
    query = PageQuery("s", "graph neural nets", "ml", None, "7d")
    runnable, pageable, note = fit_query(query)
    assert (runnable, pageable, note) == (query, True, None)
    custom_id = query.custom_id(3)
    assert custom_id == 'dg:s:3:["graph neural nets","ml",null,"7d"]'
    assert decode(custom_id) == (query, 3)
    assert decode(PageQuery("l", "", None, "lab").custom_id(2)) == (PageQuery("l", "", None, "lab"), 2)


def test_long_query_is_shortened_at_a_word_boundary_and_said_so() -> None:
    query = PageQuery("s", " ".join(["transformer"] * 18), "ml")
    runnable, pageable, note = fit_query(query)
    assert pageable and note == SHORTENED_NOTE
    assert query.text.startswith(runnable.text) and runnable.text.endswith("transformer")
    assert units(runnable.custom_id(99_999)) <= CUSTOM_ID_LIMIT


def test_unpageable_when_filters_alone_do_not_fit() -> None:
    query = PageQuery("s", "x", "t" * 100, "s" * 100)
    _, pageable, note = fit_query(query)
    assert not pageable and note == NO_PAGING_NOTE


@given(st.text(max_size=200), st.one_of(st.none(), st.text(min_size=1, max_size=100)),
       st.one_of(st.none(), st.text(min_size=1, max_size=100)), st.one_of(st.none(), st.text(min_size=1, max_size=32)),
       st.sampled_from(["s", "l"]), st.integers(0, 99_999))
def test_fitted_queries_always_fit_and_round_trip(text: str, topic: str | None, source: str | None,
                                                   since: str | None, kind: str, page: int) -> None:
    query = PageQuery("s" if kind == "s" else "l", text, topic, source, since)
    runnable, pageable, _ = fit_query(query)
    if pageable:
        custom_id = runnable.custom_id(page)
        assert units(custom_id) <= CUSTOM_ID_LIMIT
        assert decode(custom_id) == (PageQuery(runnable.kind, runnable.text, runnable.topic or None,
                                               runnable.source or None, runnable.since or None), page)


def test_decode_rejects_foreign_states() -> None:
    for state in ['{"q":1}', "[1]", '["a","b","c","d","e","f"]', "not json"]:
        try:
            PageQuery.decode("s", state)
        except ValueError:
            continue
        raise AssertionError(state)


def test_buttons_disable_at_the_ends() -> None:
    query = PageQuery("s", "q")
    assert page_view(query, 1, 1) is None
    first = page_view(query, 1, 3)
    assert first is not None
    previous, following = first.children
    assert isinstance(previous, PageButton) and isinstance(following, PageButton)
    assert previous.item.disabled and not following.item.disabled
    assert following.custom_id == 'dg:s:2:["q"]'
    last = page_view(query, 3, 3)
    assert last is not None
    assert [child.item.disabled for child in last.children if isinstance(child, PageButton)] == [False, True]
    assert first.is_persistent() and first.timeout is None
    [row] = first.to_components()
    assert [c["custom_id"] for c in row["components"]] == ['dg:s:0:["q"]', 'dg:s:2:["q"]']
    assert [c.get("disabled", False) for c in row["components"]] == [True, False]


def test_button_is_a_dynamic_item() -> None:
    assert issubclass(PageButton, discord.ui.DynamicItem)
    button = PageButton('dg:l:2:["",null,"lab"]', label="Next ▶")
    assert button.custom_id == 'dg:l:2:["",null,"lab"]'
