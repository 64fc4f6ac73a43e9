from bot.config import TopicDef, bundled_demo_config, load_config
from bot.fold import MAX_NONSTARTERS, fold, stream_safe, to_simplified
from bot.topics import TopicMatcher

TOPICS = {
    "hallucination": TopicDef(label="Hallucination 幻觉", keywords=("hallucination", "hallucinate", "幻觉")),
    "llm": TopicDef(keywords=("llm", "large language model", "大模型")),
    "attention": TopicDef(keywords=("attention", "注意力")),
}


def assign(title="", summary="", categories=(), source_topics=()):
    return TopicMatcher.from_config(TOPICS).assign(title=title, summary=summary, categories=categories,
                                                   source_topics=source_topics)


def test_keywords_in_any_language_and_traditional_script():
    assert assign(title="大模型幻覺問題") == ("hallucination", "llm")
    assert assign(summary="Why LLMs hallucinate") == ("hallucination", "llm")


def test_latin_keywords_match_at_word_start_only():
    assert assign(summary="PagedAttention is clever") == ()
    assert assign(summary="self-attention and Attention-free") == ("attention",)
    assert assign(summary="xllm") == ()


def test_source_topics_first_then_categories():
    assert assign(summary="nothing here", categories=["Hallucination 幻觉"], source_topics=["llm"]) == (
        "llm", "hallucination")
    assert assign(categories=["ATTENTION"]) == ("attention",)


def test_default_topic_set_tags_demo_like_text():
    config = load_config(bundled_demo_config(), env={})
    matcher = TopicMatcher.from_config(config.topics)
    topics = matcher.assign(title="扩散模型入门", summary="DDPM 与 score matching", categories=(), source_topics=())
    assert topics == ("diffusion",)
    assert "alignment" in matcher.assign(title="DPO — 直接偏好优化", summary="", categories=(), source_topics=())


def test_fold():
    assert fold("ＬＬＭ 幻覺") == "llm 幻觉"
    assert to_simplified("注意力機制與擴散模型") == "注意力机制与扩散模型"


def test_a_long_keyword_also_carries_the_topics_of_keywords_inside_it():
    matcher = TopicMatcher.from_config({"vision": TopicDef(keywords=("vision",)),
                                        "multimodal": TopicDef(keywords=("vision-language", "多模态")),
                                        "llm": TopicDef(keywords=("模态",))})
    assert matcher.assign(title="Vision-language models", summary="", categories=(), source_topics=()) == (
        "vision", "multimodal")
    assert matcher.assign(title="多模态", summary="", categories=(), source_topics=()) == ("multimodal", "llm")


def test_overlapping_keywords_all_count():
    topics = {"llm": TopicDef(keywords=("language model",)), "multimodal": TopicDef(keywords=("vision-language",)),
              "diffusion": TopicDef(keywords=("扩散模型",)), "hallucination": TopicDef(keywords=("模型幻觉",))}
    matcher = TopicMatcher.from_config(topics)
    assert matcher.assign(title="A vision-language model", summary="", categories=(), source_topics=()) == (
        "llm", "multimodal")
    assert matcher.assign(title="扩散模型幻觉", summary="", categories=(), source_topics=()) == (
        "diffusion", "hallucination")


def test_runs_of_combining_marks_are_cut_to_the_stream_safe_limit():
    """NFKC sorts a run of combining marks by insertion (quadratic): runs are cut to 30 first."""
    accents = "\u0301\u0316" * 5000  # acute above, grave below: out of canonical order, over and over
    assert stream_safe("e" + accents + " x") == "e" + accents[:MAX_NONSTARTERS] + " x"
    assert stream_safe("e" + "\U0001e944" * 40) == "e" + "\U0001e944" * 30  # astral marks (Adlam) too
    for starter in ("\u0f73", "\uff9e"):  # no combining class, but NFKC decomposes them into marks first
        assert stream_safe("a" + starter * 40) == "a" + starter * 30
    for text in ("café naïve", "e\u0301\u0316", "Ｃａｆé 幻覺 \U00020000", "x" + "\u0301" * MAX_NONSTARTERS):
        assert stream_safe(text) == text  # real text is left alone
    assert fold("E" + accents) == fold("E" + accents[:MAX_NONSTARTERS])
