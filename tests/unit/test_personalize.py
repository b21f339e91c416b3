"""Personalize stage: sandboxed template compile and per-recipient render."""

from __future__ import annotations

import pytest

from clarion.domain.records import Recipient, RecipientBatch
from clarion.errors import TemplateError
from clarion.pipeline.personalize import compile_template, render_batch

BRAND = {"name": "Acme Coffee"}


def recipient(subscriber_id: int, **fields: object) -> Recipient:
    return Recipient(
        subscriber_id=subscriber_id,
        phone=f"+1212555{subscriber_id:04d}",
        timezone="America/New_York",
        fields=dict(fields),
    )


def batch(*recipients: Recipient) -> RecipientBatch:
    return RecipientBatch(batch_id="b-1", brand_id=7, campaign_id=42, recipients=list(recipients))


def render(body: str, *recipients: Recipient, campaign_uid: str = "camp-uid-1"):
    return render_batch(
        compile_template(body),
        batch(*recipients),
        campaign_uid=campaign_uid,
        brand=BRAND,
        sender="+15550001111",
    )


def test_a_template_syntax_error_raises_template_error_naming_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("Hello {{ first_name }}\n{% if x %}\nunclosed")
    assert info.value.line is not None
    assert info.value.line >= 2
    assert f"line {info.value.line}" in str(info.value)
    assert info.value.field == "body"


def test_a_broken_expression_on_line_two_is_reported_on_line_two() -> None:
    with pytest.raises(TemplateError, match=r"\(line 2\)") as info:
        compile_template("Hi there\n{{ first_name }\nBye")
    assert info.value.line == 2


def test_default_filter_and_brand_name_render_for_each_recipient() -> None:
    out = render(
        'Hi {{ first_name | default("there") }}, news from {{ brand.name }}!',
        recipient(1, first_name="Ada"),
        recipient(2),
    )
    assert out.failures == []
    assert [m.body for m in out.messages] == [
        "Hi Ada, news from Acme Coffee!",
        "Hi there, news from Acme Coffee!",
    ]
    assert [m.subscriber_id for m in out.messages] == [1, 2]
    assert [m.to for m in out.messages] == ["+12125550001", "+12125550002"]


def test_the_rendered_batch_carries_the_batch_identity_and_sender() -> None:
    out = render("Hello", recipient(1))
    assert (out.batch_id, out.brand_id, out.campaign_id, out.sender) == (
        "b-1",
        7,
        42,
        "+15550001111",
    )


def test_rendered_bodies_are_stripped_of_surrounding_whitespace() -> None:
    out = render("\n  Hello {{ first_name }}  \n", recipient(1, first_name="Ada"))
    assert out.messages[0].body == "Hello Ada"


def test_a_recipient_missing_a_required_field_fails_alone_and_the_error_names_the_field() -> None:
    out = render(
        "Hi {{ first_name }}, your code is {{ promo_code }}",
        recipient(1, first_name="Ada", promo_code="A1"),
        recipient(2, first_name="Bob"),
        recipient(3, first_name="Cy", promo_code="C3"),
    )
    assert [m.subscriber_id for m in out.messages] == [1, 3]
    assert [m.body for m in out.messages] == [
        "Hi Ada, your code is A1",
        "Hi Cy, your code is C3",
    ]
    assert len(out.failures) == 1
    failure = out.failures[0]
    assert failure.subscriber_id == 2
    assert failure.to == "+12125550002"
    assert failure.error.startswith("template_error")
    assert "promo_code" in failure.error


def test_the_sandbox_refuses_unsafe_attribute_access_as_a_render_failure() -> None:
    out = render("{{ ''.__class__.__mro__ }}", recipient(1))
    assert out.messages == []
    assert len(out.failures) == 1
    assert "__class__" in out.failures[0].error
    assert "unsafe" in out.failures[0].error
    assert "object" not in [m.body for m in out.messages]


def test_the_sandbox_refuses_reaching_globals_through_a_field_value() -> None:
    out = render("{{ first_name.__init__.__globals__ }}", recipient(1, first_name="Ada"))
    assert out.messages == []
    assert len(out.failures) == 1


def test_the_same_campaign_and_subscriber_always_get_the_same_message_id() -> None:
    first = render("Hi", recipient(1), recipient(2))
    again = render("Different body, same message", recipient(2), recipient(1))
    ids_first = {m.subscriber_id: m.message_id for m in first.messages}
    ids_again = {m.subscriber_id: m.message_id for m in again.messages}
    assert ids_first == ids_again
    assert ids_first[1] != ids_first[2]


def test_a_different_campaign_uid_gives_different_message_ids() -> None:
    a = render("Hi", recipient(1), campaign_uid="camp-uid-1")
    b = render("Hi", recipient(1), campaign_uid="camp-uid-2")
    assert a.messages[0].message_id != b.messages[0].message_id


def test_a_failed_render_keeps_the_same_deterministic_message_id() -> None:
    ok = render("Hi {{ first_name }}", recipient(5, first_name="Ada"))
    failed = render("Hi {{ first_name }}", recipient(5))
    assert failed.failures[0].message_id == ok.messages[0].message_id


@pytest.mark.parametrize(
    ("text", "segments"),
    [("x", 1), ("x" * 160, 1), ("x" * 161, 2), ("’" * 71, 2), ("€" * 81, 2)],
)
def test_segments_is_filled_in_from_the_rendered_body(text: str, segments: int) -> None:
    out = render("{{ text }}", recipient(1, text=text))
    assert out.messages[0].segments == segments


def test_a_stored_template_that_no_longer_compiles_fails_each_recipient_not_the_batch() -> None:
    """A campaign stored before a sandbox limit (an include, say) made the personalize stage
    raise for the whole batch, which was redelivered for ever."""
    from clarion.pipeline.personalize import stored_template

    with pytest.raises(TemplateError):
        compile_template("Hi {% include 'x' %}")
    out = render_batch(
        stored_template("Hi {% include 'x' %}"),
        batch(recipient(1), recipient(2)),
        campaign_uid="camp-uid-1",
        brand=BRAND,
        sender="+15550001111",
    )
    assert out.messages == []
    assert [f.subscriber_id for f in out.failures] == [1, 2]
    assert all(f.error.startswith("template_error") for f in out.failures)
    assert "include" in out.failures[0].error
    assert stored_template("Hi {{ first_name }}").render({"first_name": "Ann"}) == "Hi Ann"


def test_an_emails_html_escapes_the_subscribers_fields() -> None:
    from clarion.pipeline.personalize import stored_html_template

    html = stored_html_template('<p>Hi {{ first_name }}, <a href="{{ brand.shop }}">shop</a></p>')
    out = html.render({"first_name": "<b>Eve</b>", "brand": {"shop": "https://s.example/?a=1"}})
    assert out == ('<p>Hi &lt;b&gt;Eve&lt;/b&gt;, <a href="https://s.example/?a=1">shop</a></p>')
