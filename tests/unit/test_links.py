"""Short-link codes, the URLs a message's text has, the rewrite, and who counts as a click."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.pipeline import links
from clarion.pipeline.personalize import constant_urls

IDS = st.integers(1, (1 << 48) - 1)


@given(IDS, IDS)
def test_a_code_names_its_link_and_recipient_and_nothing_else(link: int, sub: int) -> None:
    (code,) = links.make_codes("s3cret", [(link, sub)])
    assert len(code) == links.CODE_CHARS
    assert links.read_code("s3cret", code) == (link, sub)
    assert links.read_code("other", code) is None


def test_every_altered_character_of_a_code_names_nothing() -> None:
    (code,) = links.make_codes("s3cret", [(7, 42)])
    for i, ch in enumerate(code):
        for other in "AB_-":
            if other != ch:
                assert links.read_code("s3cret", code[:i] + other + code[i + 1 :]) is None


@pytest.mark.parametrize("code", ["", "short", "é" * 22, "A" * 21, "A" * 23, "=" * 22])
def test_malformed_codes_name_nothing(code: str) -> None:
    assert links.read_code("s3cret", code) is None


def test_ids_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        links.make_codes("s3cret", [(0, 1)])
    with pytest.raises(ValueError, match="out of range"):
        links.make_codes("s3cret", [(1, 1 << 48)])


def test_urls_end_where_the_sentence_does() -> None:
    text = (
        "Shop https://northwind.example/sale. See (https://en.wikipedia.org/wiki/Foo_(bar)) or"
        " https://a.example/c?x=1&y=2! Again: https://northwind.example/sale"
    )
    assert links.find_urls(text) == [
        "https://northwind.example/sale",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "https://a.example/c?x=1&y=2",
    ]


def test_only_whole_tracked_urls_are_rewritten_each_recipient_their_own() -> None:
    r = links.Rewriter("https://go.example/l/", {"https://shop.example/c": 9}, "s3cret")
    texts = ["A https://shop.example/c.", "B https://shop.example/cart/7 x", "C none"]
    out = r.apply(texts, [1, 2, 3])
    assert out[0].startswith("A https://go.example/l/")
    assert out[0].endswith(".")
    assert links.read_code("s3cret", out[0][len("A https://go.example/l/") : -1]) == (9, 1)
    assert out[1:] == texts[1:]  # a URL that only begins with a tracked one stays


def test_only_urls_the_same_for_everyone_are_tracked() -> None:
    body = (
        "{{ brand.name }}: {{ brand.shop }}/sale, https://x.example/{{ first_name }},"
        " https://x.example/p/{{ first_name | default('all') }} https://x.example/{{ phone[-4:] }}"
    )
    assert constant_urls(body, brand={"name": "N", "shop": "https://n.example"}) == [
        "https://n.example/sale",
        "https://x.example/p/all",
    ]


@pytest.mark.parametrize(
    ("method", "agent", "kind"),
    [
        ("GET", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148", "human"),
        ("GET", "Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/131.0 Mobile Safari", "human"),
        ("HEAD", "Mozilla/5.0 (iPhone)", "head"),
        ("GET", "facebookexternalhit/1.1 Facebot Twitterbot/1.0", "bot"),
        ("GET", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "bot"),
        ("GET", "WhatsApp/2.23.20.0", "bot"),
        ("GET", "python-requests/2.32", "bot"),
        ("GET", None, "bot"),
        ("GET", "", "bot"),
    ],
)
def test_people_unfurlers_scanners_and_head_requests_are_told_apart(
    method: str, agent: str | None, kind: str
) -> None:
    assert links.click_kind(method, agent) == kind
