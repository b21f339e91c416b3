"""Templates that only fill in fields render without Jinja's per-render context, with
exactly Jinja's output; anything else, or anything unsure, is Jinja's."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.harness.bench import BODY
from clarion.pipeline.personalize import compile_template

FILL_INS = [
    BODY,
    "Hi {{ first_name }}!",
    "{{ brand.name }}: {{ city | default('') }} {{ first_name|default(3) }}",
    "{{ brand.items }} {{ brand.name }}",  # a dict's attribute: Jinja's sandbox decides
    "{{ range | default('x') }}",  # a global: Jinja's
    "plain text, no fields\n",
]
values = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), st.booleans()
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "first_name": values,
        "city": values,
        "brand": st.one_of(
            values, st.fixed_dictionaries({}, optional={"name": values, "items": values})
        ),
    },
)


def jinja_or_error(template: Any, context: dict[str, Any]) -> str:
    try:
        return str(template.jinja.render(context))
    except Exception as exc:
        return f"error {type(exc).__name__}: {exc}"


def fast_or_error(template: Any, context: dict[str, Any]) -> str:
    try:
        return str(template.render(context))
    except Exception as exc:
        return f"error {type(exc).__name__}: {exc}"


@pytest.mark.parametrize("body", FILL_INS)
@given(context=contexts)
def test_a_fill_in_template_renders_exactly_as_jinja_would(
    body: str, context: dict[str, Any]
) -> None:
    template = compile_template(body)
    assert fast_or_error(template, context) == jinja_or_error(template, context)


def test_the_bench_template_takes_the_fast_path() -> None:
    assert compile_template(BODY).pieces is not None


@pytest.mark.parametrize(
    "body",
    [
        "{% if first_name %}Hi {{ first_name }}{% endif %}",
        "{{ first_name | upper }}",
        "{{ first_name ~ '!' }}",
        "{{ first_name | default(city) }}",
        "{{ first_name | default('x', true) }}",
        "{{ brand['name'] }}",
    ],
)
def test_anything_more_than_filling_in_fields_is_left_to_jinja(body: str) -> None:
    assert compile_template(body).pieces is None


def test_a_missing_field_still_fails_as_jinja_fails_it() -> None:
    with pytest.raises(jinja2.UndefinedError):
        compile_template("Hi {{ first_name }}").render({})
