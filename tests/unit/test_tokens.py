from llm_router.tokens import count_message_tokens, count_text_tokens
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
