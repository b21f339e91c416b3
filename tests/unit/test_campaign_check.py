"""Campaign body checks before launch (brand name, opt-out instructions, encoding) and the
lenient sample render they run on."""

from __future__ import annotations

import pytest

from clarion.domain.rows import SubscriberRow
from clarion.errors import TemplateError
from clarion.pipeline.campaign import check_sms_body, sample_fields
from clarion.pipeline.personalize import render_sample

BRAND_NAME = "Acme Bakery"


def brand_errors(errors: tuple[str, ...]) -> list[str]:
    return [e for e in errors if "name the brand" in e]


def opt_out_errors(errors: tuple[str, ...]) -> list[str]:
    return [e for e in errors if "opt out" in e]


def test_a_first_contact_without_the_brand_name_is_an_error_naming_the_brand() -> None:
    check = check_sms_body(
        "Fresh bread today! Reply STOP to opt out", brand_name=BRAND_NAME, first_contact=True
    )
    assert len(check.errors) == 1
    assert brand_errors(check.errors) == list(check.errors)
    assert BRAND_NAME in check.errors[0]


def test_the_brand_name_is_found_whatever_its_case() -> None:
    check = check_sms_body(
        "ACME BAKERY: fresh bread today! Reply STOP to opt out",
        brand_name=BRAND_NAME,
        first_contact=True,
    )
    assert check.errors == ()


def test_a_first_contact_without_opt_out_instructions_is_an_error() -> None:
    check = check_sms_body(
        "Acme Bakery: fresh bread today!", brand_name=BRAND_NAME, first_contact=True
    )
    assert len(check.errors) == 1
    assert opt_out_errors(check.errors) == list(check.errors)


@pytest.mark.parametrize(
    "instructions",
    [
        "Reply STOP to end",
        "reply stop to end",
        "Reply Stop",
        "Text STOP.",
        "Reply OPT OUT to opt out",
        "opt out anytime",
        "Opt-out: reply here",
        "to OPT-OUT text back",
        "Unsubscribe: reply here",
        "UNSUBSCRIBE anytime",
    ],
)
def test_every_usual_way_of_saying_how_to_opt_out_counts(instructions: str) -> None:
    check = check_sms_body(
        f"Acme Bakery: fresh bread today! {instructions}",
        brand_name=BRAND_NAME,
        first_contact=True,
    )
    assert check.errors == ()


@pytest.mark.parametrize(
    "body",
    [
        "Acme Bakery: nonstop deals all week!",
        "Acme Bakery: our stopwatch sale is on",
    ],
)
def test_stop_inside_another_word_is_not_an_opt_out_instruction(body: str) -> None:
    check = check_sms_body(body, brand_name=BRAND_NAME, first_contact=True)
    assert len(opt_out_errors(check.errors)) == 1


def test_a_first_contact_with_brand_and_opt_out_instructions_has_no_errors() -> None:
    check = check_sms_body(
        "Acme Bakery: 2 for 1 croissants today. Reply STOP to opt out",
        brand_name=BRAND_NAME,
        first_contact=True,
    )
    assert check.errors == ()
    assert check.segments.encoding == "GSM-7"


def test_a_later_message_needs_neither_the_brand_name_nor_opt_out_instructions() -> None:
    check = check_sms_body("2 for 1 croissants today", brand_name=BRAND_NAME, first_contact=False)
    assert check.errors == ()


@pytest.mark.parametrize("first_contact", [True, False])
def test_an_empty_sample_is_an_error(first_contact: bool) -> None:
    check = check_sms_body("", brand_name=BRAND_NAME, first_contact=first_contact)
    assert "the message renders empty" in check.errors
    assert check.segments.segments == 0


def test_the_check_keeps_the_sample_and_its_segment_count() -> None:
    sample = "Acme Bakery: " + "a" * 200 + " Reply STOP to opt out"
    check = check_sms_body(sample, brand_name=BRAND_NAME, first_contact=True)
    assert check.sample == sample
    assert check.segments.encoding == "GSM-7"
    assert check.segments.segments == 2


def test_describe_names_the_ucs2_characters_and_suggests_a_gsm7_fix() -> None:
    body = "Acme Bakery: it’s back — 2 for 1 croissants. Reply STOP to opt out"
    check = check_sms_body(body, brand_name=BRAND_NAME, first_contact=True)
    text = check.describe()
    assert text.startswith("UCS-2, 1 segment(s), ")
    assert "characters forcing UCS-2: '’' '—'" in text
    fixed = "Acme Bakery: it's back - 2 for 1 croissants. Reply STOP to opt out"
    assert f"suggested fix (GSM-7, 1 segment(s)): {fixed}" in text


def test_describe_of_a_gsm7_body_has_no_characters_and_no_fix() -> None:
    check = check_sms_body(
        "Acme Bakery: fresh bread. Reply STOP to opt out", brand_name=BRAND_NAME, first_contact=True
    )
    text = check.describe()
    assert text == f"GSM-7, 1 segment(s), {len(check.sample)} units"


def test_render_sample_renders_missing_fields_empty_and_the_brand_name() -> None:
    body = "Hi {{ first_name }}{{ last_name }}! {{ brand.name }}: fresh bread. Reply STOP to end"
    sample = render_sample(body, {"first_name": "Ada"}, brand={"name": BRAND_NAME})
    assert sample == "Hi Ada! Acme Bakery: fresh bread. Reply STOP to end"


def test_render_sample_strips_surrounding_white_space() -> None:
    sample = render_sample("  {{ city }}\n{{ brand.name }}  \n", {}, brand={"name": BRAND_NAME})
    assert sample == "Acme Bakery"


def test_render_sample_raises_template_error_on_a_syntax_error() -> None:
    with pytest.raises(TemplateError) as info:
        render_sample("Hi {{ first_name ", {"first_name": "Ada"}, brand={"name": BRAND_NAME})
    assert info.value.field == "body"
    assert info.value.line == 1


def test_the_sample_sees_the_subscribers_attributes_and_the_standard_fields_they_have() -> None:
    ada = SubscriberRow(
        id=1, phone="+12125557788", timezone=None, first_name="Ada", last_name="",
        email=None, attributes={"plan": "gold", "first_name": "stale"}, carrier="AT&T",
    )  # fmt: skip
    assert sample_fields(ada) == {"plan": "gold", "first_name": "Ada", "phone": "+12125557788"}
    assert render_sample("{{ first_name }}: {{ plan }}", sample_fields(ada), brand={}) == (
        "Ada: gold"
    )


def test_a_brand_without_a_subscriber_with_a_phone_samples_no_fields() -> None:
    assert sample_fields(None) == {}
