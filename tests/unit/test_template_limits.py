"""Campaign templates run in a bounded sandbox: a template that would make a huge number,
string or loop is refused quickly with a TemplateError naming its line, a message over the
brand's segments fails for its recipient only, and ordinary templates render as before."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from clarion.domain.records import Recipient, RecipientBatch, RenderedBatch
from clarion.errors import TemplateError
from clarion.pipeline.campaign import check_sms_body, validate_launch
from clarion.pipeline.personalize import (
    check_template,
    compile_template,
    render_batch,
    render_sample,
)
from tests.integration.helpers import BODY

BRAND = {"name": "Northwind"}
QUICK_S = 0.5  # each refusal takes milliseconds; unbounded, each took seconds or gigabytes


def refused_quickly(action: Callable[[], Any]) -> TemplateError:
    started = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        action()
    assert time.perf_counter() - started < QUICK_S
    return info.value


def recipient(subscriber_id: int, **fields: object) -> Recipient:
    return Recipient(
        subscriber_id=subscriber_id,
        phone=f"+1212555{subscriber_id:04d}",
        timezone="America/New_York",
        fields=dict(fields),
    )


def render(body: str, *recipients: Recipient, max_segments: int = 10) -> RenderedBatch:
    return render_batch(
        compile_template(body),
        RecipientBatch(batch_id="b-1", brand_id=7, campaign_id=42, recipients=list(recipients)),
        campaign_uid="camp-uid-1",
        brand=BRAND,
        sender="+15550001111",
        max_segments=max_segments,
    )


# Each is a problem whatever the subscriber: refused when the campaign is created.
REFUSED_AT_CREATE = [
    ("{{ 10**5000 }}", "'**' makes a number over 4,096 bits"),
    ("{{ 7**3000000 }}", "'**' makes a number over 4,096 bits"),
    ("{{ 9**(9**9) }}", "'**' makes a number over 4,096 bits"),
    ("{{ 'ab'*30000000 }}", "'*' makes over 65,536"),
    ("{{ ['ab']*30000000 }}", "'*' makes over 65,536"),
    ("{{ 'x'|center(10**9) }}", "center: a width over 1,600"),
    ("{{ 'x'|indent(10**9) }}", "indent: a width over 1,600"),
    ("{{ 'a b'|wordwrap(3, wrapstring='x'*60000) }}", "wordwrap makes over 65,536"),
    ("{{ '%09999999d'|format(1) }}", "'%': a width or precision over 1,600"),
    ("{{ '%09999999d' % 1 }}", "'%': a width or precision over 1,600"),
    ("{{ '{:>999999999}'.format(1) }}", "format: a width over 1,600"),
    ("{{ 'x'.ljust(10**9) }}", "ljust: a width over 1,600"),
    ("{{ 'ab'|replace('', 'x'*60000) }}", "replace makes over 65,536"),
    ("{{ range(10**9)|join }}", "range() of over 10,000 items"),
    ("{{ range(9000)|join('x'*9000) }}", "join makes over 65,536"),
    ("{{ [1]|slice(10**9)|list }}", "slice: over 10,000"),
    ("{{ 5|round(-10**8) }}", "round: a width over 1,600"),
    ("{% set s = 'x'*60000 %}{{ s ~ s }}", "'~' makes over 65,536"),
    ("{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}", "loops"),
    ("{% for i in range(9999) %}{{ 'x'*60000 }}{% endfor %}", "over 65,536 characters"),
]


@pytest.mark.parametrize(("body", "reason"), REFUSED_AT_CREATE)
def test_a_template_over_the_limits_is_refused_at_create_quickly(body: str, reason: str) -> None:
    error = refused_quickly(lambda: check_template(body))
    assert reason in str(error)


@pytest.mark.parametrize(("body", "reason"), REFUSED_AT_CREATE)
def test_the_same_template_fails_each_recipient_quickly_and_alone(body: str, reason: str) -> None:
    started = time.perf_counter()
    out = render(body, recipient(1), recipient(2))
    assert time.perf_counter() - started < 2 * QUICK_S
    assert out.messages == []
    assert [f.subscriber_id for f in out.failures] == [1, 2]
    assert all(f.error.startswith("template_error") and reason in f.error for f in out.failures)


def test_the_error_names_the_line_of_the_expression_over_the_limit() -> None:
    error = refused_quickly(lambda: check_template("Hi {{ first_name }}\n\n{{ 7**3000000 }}"))
    assert error.line == 3
    assert "(line 3)" in str(error)
    out = render("Hi {{ first_name }}\n\n{{ 7**3000000 }}", recipient(1, first_name="Ada"))
    assert out.failures[0].error.startswith("template_error (line 3): '**'")


def test_jinja_raises_left_to_right_so_9_9_9_is_a_small_number_rendered_quickly() -> None:
    started = time.perf_counter()
    assert render_sample("{{ 9**9**9 }}", {}, brand=BRAND) == str((9**9) ** 9)
    assert time.perf_counter() - started < QUICK_S


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("Hi\n{{ y() }}", 2, "'y' is undefined"),
        ("Hi\n\n{{ ''.__class__ }}", 3, "'__class__' of 'str' object is unsafe"),
        ("Hi\n{{ ''.__class__ | default('x') }}", 2, "unsafe"),
        ("Hi\n{{ 1 / 0 }}", 2, "ZeroDivisionError"),
        ("Hi\n{{ 'x'.translate({}) }}", 2, "translate() is not allowed"),
    ],
)
def test_what_fails_for_the_sample_is_a_template_error_naming_the_line(
    body: str, line: int, reason: str
) -> None:
    error = refused_quickly(lambda: render_sample(body, {}, brand=BRAND))
    assert error.line == line
    assert reason in str(error)


@pytest.mark.parametrize(
    ("body", "construct"),
    [
        ("Hi\n{% include 'x' %}", "{% include %}"),
        ("Hi\n{% import 'x' as x %}", "{% import %}"),
        ("Hi\n{% extends 'x' %}", "{% extends %}"),
        ("Hi\n{% macro m() %}x{% endmacro %}", "{% macro %}"),
        ("Hi\n{% set s %}x{% endset %}", "{% set %} block"),
        ("Hi\n{% filter upper %}x{% endfilter %}", "{% filter %}"),
        ("Hi\n{% set ns = namespace(s='') %}{% set ns.s = 'x' %}", "namespace"),
        ("Hi\n{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "recursive loop"),
    ],
)
def test_constructs_that_need_a_loader_or_build_text_aside_are_refused_at_compile(
    body: str, construct: str
) -> None:
    for compile_it in (compile_template, check_template):
        error = refused_quickly(lambda c=compile_it: c(body))
        assert error.line == 2
        assert construct in str(error)


def test_validate_launch_refuses_a_template_over_the_limits() -> None:
    with pytest.raises(TemplateError, match=r"\*\*"):
        validate_launch(campaign_id=1, body="{{ 10**5000 }}", status="draft", relaunch=False)


@pytest.mark.parametrize(
    ("body", "fields", "expected"),
    [
        (BODY, {"first_name": "Ada"}, "Northwind: Hi Ada! 20% off today. Reply STOP to opt out."),
        ("{{ first_name | default('there') }}", {}, "there"),
        ("{{ 2 * 3 }} {{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 1 + 2 }}", {}, "6 1024 ababab 3"),
        ("{{ price * 0.8 }}", {"price": 10}, "8.0"),
        ("{{ '%.2f'|format(price) }} {{ '%5d' % 42 }} {{ 7 % 4 }}", {"price": 9.5}, "9.50    42 3"),
        ("<{{ '{:>6}'.format(n) }}|{{ n|center(9) }}>", {"n": "Ada"}, "<   Ada|   Ada   >"),
        ("{% for i in range(3) %}{{ i }}{% endfor %} {{ [1, 2]|join(', ') }}", {}, "012 1, 2"),
        ("{{ name ~ '!' }} {{ name|replace('a', 'aa') }}", {"name": "Ada"}, "Ada! Adaa"),
        ("{{ items|sum }} {{ 5.46|round(1) }}", {"items": [1, 2]}, "3 5.5"),
    ],
)
def test_ordinary_templates_still_render(body: str, fields: dict[str, Any], expected: str) -> None:
    out = render(body, recipient(1, **fields))
    assert out.failures == []
    assert out.messages[0].body == expected
    assert render_sample(body, fields, brand=BRAND) == expected
    check_template(body)


def test_a_recipient_over_the_brands_segments_fails_alone_and_the_others_render() -> None:
    out = render(
        "{{ text }}",
        recipient(1, text="x" * 306),  # 2 segments
        recipient(2, text="x" * 307),  # 3
        recipient(3, text="short"),
        max_segments=2,
    )
    assert [(m.subscriber_id, m.segments) for m in out.messages] == [(1, 2), (3, 1)]
    assert [f.subscriber_id for f in out.failures] == [2]
    assert out.failures[0].error == "template_error: 3 segments; the brand's limit is 2"


def test_ten_segments_is_the_default_limit() -> None:
    out = render("{{ text }}", recipient(1, text="x" * 1530), recipient(2, text="x" * 1531))
    assert [m.subscriber_id for m in out.messages] == [1]
    assert "11 segments; the brand's limit is 10" in out.failures[0].error


def test_a_message_over_the_absolute_cap_fails_alone_on_the_fast_path_and_on_jinjas() -> None:
    fast = render("Hi {{ text }}", recipient(1, text="x" * 70_000), recipient(2, text="Ada"))
    assert compile_template("Hi {{ text }}").pieces is not None
    looped = render(
        "{% for c in text %}{{ text }}{% endfor %}",
        recipient(1, text="x" * 300),  # 90,000 characters
        recipient(2, text="ab"),
        max_segments=1,
    )
    for out, body in ((fast, "Hi Ada"), (looped, "abab")):
        assert [m.body for m in out.messages] == [body]
        assert [f.subscriber_id for f in out.failures] == [1]
        assert "over 65,536 characters" in out.failures[0].error


def test_a_loop_over_a_long_field_fails_alone_once_it_has_run_10_000_times() -> None:
    out = render(
        "{% for c in text %}{% endfor %}ok",
        recipient(1, text="x" * 10_001),
        recipient(2, text="x" * 10_000),
    )
    assert [m.subscriber_id for m in out.messages] == [2]
    assert "loops ran over 10,000 times" in out.failures[0].error


def test_validation_names_the_segments_and_the_brands_limit() -> None:
    sample = "Northwind: " + "x" * 300 + " Reply STOP to opt out."
    check = check_sms_body(sample, brand_name="Northwind", first_contact=True, max_segments=2)
    assert check.errors == ("the message is 3 segments; the brand's limit is 2",)
    assert check_sms_body(sample, brand_name="Northwind", first_contact=True).errors == ()
