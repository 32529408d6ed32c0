import subprocess
import sys

import pytest
from llm_router.tokens import count_message_tokens, count_text_tokens, get_encoding
from llm_router.types import Message


def test_text_count_matches_o200k() -> None:
    # "hello world" is two tokens in o200k_base (and in cl100k_base)
    assert count_text_tokens("hello world") == 2
    assert count_text_tokens("hello world", "cl100k_base") == 2
    assert count_text_tokens("") == 0


def test_message_overhead() -> None:
    one = count_message_tokens([Message(role="user", content="hello world")])
    assert one == 2 + 3 + 3
    two = count_message_tokens(
        [Message(role="system", content="be brief"), Message(role="user", content="hello world")]
    )
    assert two > one


def test_images_are_counted() -> None:
    msg = Message(
        role="user",
        content=[{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:,"}}],
    )
    assert count_message_tokens([msg]) > 700


def test_very_long_text_is_counted_in_chunks() -> None:
    text = "word " * 400_000  # two million characters: more than the BPE library takes at once
    assert abs(count_text_tokens(text) - 400_000) <= 20


SAMPLES = [
    "hello world",
    "Write a Python function to calculate fibonacci numbers",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\r\n\ttabbed",
    "Übersetze bitte: où est la gare ? 駅はどこですか。 Где вокзал? 🚉🚄",
    "   leading and trailing spaces   \n\n\n",
    "<|endoftext|> is text here, not a special token",
    "1234567890 3.14159 -42 1e10",
]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_counts_match_bpe_openai_public_api(encoding: str) -> None:
    """The compiled tokenizer the core loads on its own counts exactly as bpe-openai's ``Encoding`` does."""
    import bpe_openai

    public = bpe_openai.get_encoding(encoding)
    ours = get_encoding(encoding)
    for text in SAMPLES:
        assert ours.count(text) == len(public.encode_ordinary(text)), text
        assert ours.encode_ordinary(text) == public.encode_ordinary(text), text


def test_lone_surrogates_are_counted_as_bpe_openai_does() -> None:
    import bpe_openai

    text = "a\ud800b"
    assert get_encoding("o200k_base").count(text) == len(bpe_openai.get_encoding("o200k_base").encode_ordinary(text))


def test_loading_the_encoding_does_not_import_the_bpe_openai_package() -> None:
    """The package decodes every vocabulary it ships in Python when imported (~0.6 s); counting needs none of it."""
    code = (
        "import sys\n"
        "from llm_router.tokens import count_text_tokens\n"
        "assert count_text_tokens('hello world') == 2\n"
        "print('bpe_openai' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
