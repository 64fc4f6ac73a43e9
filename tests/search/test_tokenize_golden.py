"""Golden output of the tokenizer for a fixed mixed Chinese/English sample.

Written before the ingest speed-up work: any change here changes what the index stores, and needs a
``TOKENIZER_VERSION`` bump (the index then rebuilds itself).
"""

from __future__ import annotations

from bot.search.tokenize import TOKENIZER_VERSION, tokenize

SAMPLE = ("DeepSeek-V3 发布：混合专家（MoE）模型在 MMLU 上得分 88.5%，FlashAttention-2 与 GQA/MQA 提速；"
          "Llama3.1 微調後的幻覺問題顯著減少。Transformers models, running pretraining 预训练阶段pretraining "
          "ＧＰＴ４，café naïve résumés 東京の天気 서울 뉴스 a_b x" + "y" * 45)

GOLDEN = [
    "deepseek", "deep", "seek", "v3", "3", "发布", "混合", "合专", "专家", "moe", "mo", "模型", "型在", "mmlu",
    "上得", "得分", "88", "5", "flashattent", "flash", "attent", "2", "与", "gqa", "mqa", "提速", "llama3",
    "llama", "3", "1", "微调", "调后", "后的", "的幻", "幻觉", "觉问", "问题", "题显", "显著", "著减", "减少",
    "transform", "model", "run", "pretrain", "预训", "训练", "练阶", "阶段", "pretrain", "gpt4", "gpt", "4",
    "café", "naïv", "résumé", "东京", "京の", "の天", "天気", "서울", "뉴스", "a", "b",
    "x" + "y" * 39,
]


def test_golden_mixed_sample():
    assert TOKENIZER_VERSION == 2
    assert tokenize(SAMPLE) == GOLDEN


def test_golden_is_stable_when_repeated():
    # Caches (memoised stems, runs) must not change the output on a second pass.
    tokenize(SAMPLE)
    assert tokenize(SAMPLE) == GOLDEN
    assert tokenize(SAMPLE + " " + SAMPLE) == GOLDEN + GOLDEN


def test_batch_tokenizer_matches_golden():
    from bot.search.tokenize import tokenize_many

    assert tokenize_many([SAMPLE, "", SAMPLE.upper(), SAMPLE]) == [
        GOLDEN, [], tokenize(SAMPLE.upper()), GOLDEN]


def test_tokenize_for_index_matches_golden():
    from bot.ingest import tokenize_for_index

    joined = " ".join(GOLDEN)
    assert tokenize_for_index([(SAMPLE, SAMPLE), ("", SAMPLE)]) == [(joined, joined), ("", joined)]
