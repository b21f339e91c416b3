"""The web UI's composer, audience builder and launch page: httpx against the HTTP app
`clarion run` serves, on real Postgres. What the pages save goes through the same use cases
as the API; another brand's drafts and segments are not found; every POST needs its CSRF
token."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from clarion import bootstrap, service
from clarion.api.app import create_app
from clarion.api.v1 import V1
from clarion.domain.clock import PinnedClock
from clarion.domain.contacts import new_subscriber
from clarion.pipeline.links import CODE_CHARS
from clarion.store import brands
from tests.conftest import DAYTIME

PASSWORD = "correct horse battery"
BODY = "{{ brand.name }}: Hi {{ first_name | default('there') }}! Reply STOP to opt out."


@dataclass
class Site:
    client: httpx.AsyncClient
    brand_id: int
    other_brand_id: int
    csrf: str


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def text_of(page: str) -> str:
    """The page's text, tags dropped and entities read, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field)}-error">([^<]*)</p>', page)
    assert found, f"no error next to {field}"
    return html.unescape(found.group(1))


@pytest.fixture
async def site(infra: bootstrap.Infra) -> AsyncIterator[Site]:
    brand_id = await service.brands.create(
        infra, slug="northwind", name="Northwind", sender="+15125550100"
    )
    other = await service.brands.create(
        infra, slug="contoso", name="Contoso", sender="+15125550199"
    )
    rows = [
        {"phone": "+15125550101", "first_name": "Ada", "email": "ada@example.com",
         "sms_consent": "yes", "tier": "gold", "state": "TX"},
        {"phone": "+15125550102", "first_name": "Grace", "email": "grace@example.com",
         "sms_consent": "yes", "tier": "silver", "state": "TX"},
        {"phone": "+15125550103", "first_name": "Linus", "sms_consent": "yes", "tier": "gold",
         "state": "CA"},
    ]  # fmt: skip
    await brands.import_subscribers(
        infra.pool, brand_id, [new_subscriber(r) for r in rows], source="test"
    )
    await service.users.create(infra, brand_id, "ada@northwind.example", PASSWORD)
    app = create_app(infra.bus, {}, api=V1(infra, clock=PinnedClock(DAYTIME)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://clarion"
    ) as client:
        page = await client.get("/signin")
        signed = await client.post(
            "/signin",
            data={"email": "ada@northwind.example", "password": PASSWORD,
                  "csrf_token": csrf_of(page.text), "next": "/"},
        )  # fmt: skip
        assert signed.status_code == 303
        csrf = csrf_of((await client.get("/campaigns/new")).text)
        yield Site(client, brand_id, other, csrf)
        await app.state.web.counter.settle()


def form(site: Site, **fields: str) -> dict[str, str]:
    return {"csrf_token": site.csrf, "variants": "1", "channel": "sms", "track_links": "on",
            **fields}  # fmt: skip


async def test_a_draft_made_through_the_form_is_the_draft_the_api_would_make(
    site: Site, infra: bootstrap.Infra
) -> None:
    page = await site.client.get("/campaigns/new")
    assert page.status_code == 200
    assert '<label for="v0_body">SMS text</label>' in page.text
    assert "{{ brand.name }}" in html.unescape(page.text)  # the brand's macros as a hint
    resp = await site.client.post(
        "/campaigns/new", data=form(site, name="Spring sale", v0_body=BODY, op="save")
    )
    assert resp.status_code == 303
    campaign_id = int(resp.headers["location"].split("/")[2])
    c = await service.campaigns.get(infra, campaign_id, brand_id=site.brand_id)
    assert (c.name, c.body, c.channel, c.status, c.track_links) == (
        "Spring sale", BODY, "sms", "draft", True,
    )  # fmt: skip
    edit = await site.client.get(resp.headers["location"])
    assert "Draft saved" in edit.text
    assert (
        "Passes the launch&#39;s checks" in edit.text or "Passes the launch's checks" in edit.text
    )
    changed = await site.client.post(
        f"/campaigns/{campaign_id}/edit",
        data=form(site, name="Spring sale 2", v0_body=BODY + " Today only.", op="save"),
    )
    assert changed.status_code == 303
    c = await service.campaigns.get(infra, campaign_id, brand_id=site.brand_id)
    assert (c.name, c.body) == ("Spring sale 2", BODY + " Today only.")


async def test_errors_are_shown_next_to_their_field(site: Site) -> None:
    broken = await site.client.post(
        "/campaigns/new",
        data=form(site, name="Broken", v0_body="Hello\n{{ first_name ", op="save"),
    )
    assert broken.status_code == 400
    assert "line 2" in field_error(broken.text, "v0_body")
    assert 'aria-describedby="macros-hint v0_body-error" aria-invalid="true"' in broken.text
    unnamed = await site.client.post("/campaigns/new", data=form(site, name=" ", v0_body=BODY))
    assert "1 to 200 characters" in field_error(unnamed.text, "name")
    weights = await site.client.post(
        "/campaigns/new",
        data=form(site, name="AB", variants="2", v0_body=BODY, v1_body=BODY + "!",
                  v0_weight="60", v1_weight="30", ab_mode="split"),
    )  # fmt: skip
    assert weights.status_code == 400
    assert "the weights sum to 90, not 100" in field_error(weights.text, "weights")
    # what was typed is shown back
    assert "Hello\n{{ first_name " in html.unescape(broken.text)


async def test_an_unknown_macro_is_named_in_the_preview(site: Site) -> None:
    resp = await site.client.post(
        "/campaigns/compose/preview",
        data=form(site, name="x", v0_body="{{ brand.nmae }}: hi. Reply STOP to opt out."),
    )
    assert resp.status_code == 200
    assert "unknown macro brand.nmae" in text_of(resp.text)


async def test_the_counter_names_what_forces_ucs2_and_the_fix_replaces_it(site: Site) -> None:
    curly = "{{ brand.name }}: it\u2019s here \u2014 \u201cnew\u201d boots. Reply STOP to opt out."
    live = text_of(
        (await site.client.post("/campaigns/compose/preview", data=form(site, v0_body=curly))).text
    )
    assert "UCS-2" in live
    assert "Right Single Quotation Mark" in live
    assert "Em Dash" in live
    assert "Replace with GSM-7 equivalents" in live
    assert "then GSM-7, 1 segment" in live
    fixed = await site.client.post(
        "/campaigns/new", data=form(site, name="Boots", v0_body=curly, op="fix:0")
    )
    assert fixed.status_code == 200  # shown again, not saved
    body = re.search(r'<textarea id="v0_body"[^>]*>([^<]*)</textarea>', fixed.text)
    assert body is not None
    assert html.unescape(body.group(1)) == (
        '{{ brand.name }}: it\'s here - "new" boots. Reply STOP to opt out.'
    )
    after = text_of(fixed.text)
    assert "GSM-7 · 1 segment" in after
    assert "UCS-2 (70" not in after


async def test_the_preview_renders_a_subscribers_fields_and_a_shortened_link(site: Site) -> None:
    body = (
        "{{ brand.name }}: {{ first_name }}, {{ tier }} deals: https://shop.example/sale"
        " Reply STOP to opt out."
    )
    resp = await site.client.post(
        "/campaigns/compose/preview", data=form(site, v0_body=body, who="+1 512 555 0102")
    )
    page = text_of(resp.text)
    assert "Northwind: Grace, silver deals: http" in page
    short = re.search(r"(https?://[^/\s]+/l/)([A-Za-z0-9_-]+) Reply STOP", page)
    assert short is not None, page
    assert len(short.group(2)) == CODE_CHARS
    assert "https://shop.example/sale" not in page
    # counted as sent: the short link, not the long URL
    rendered = (
        f"Northwind: Grace, silver deals: {short.group(1)}{short.group(2)} Reply STOP to opt out."
    )
    assert f"{len(rendered)} characters" in page
    by_email = text_of(
        (
            await site.client.post(
                "/campaigns/compose/preview", data=form(site, v0_body=body, who="ada@example.com")
            )
        ).text
    )
    assert "Northwind: Ada, gold deals" in by_email
    nobody = await site.client.post(
        "/campaigns/compose/preview", data=form(site, v0_body=body, who="nobody@example.com")
    )
    assert "no subscriber with 'nobody@example.com'" in text_of(nobody.text)
    untracked = text_of(
        (
            await site.client.post(
                "/campaigns/compose/preview",
                data={**form(site, v0_body=body), "track_links": ""},
            )
        ).text
    )
    assert "https://shop.example/sale" in untracked


async def test_variants_are_saved_with_their_weights_and_test(
    site: Site, infra: bootstrap.Infra
) -> None:
    added = await site.client.post(
        "/campaigns/new", data=form(site, name="AB", v0_body=BODY, op="add")
    )
    assert 'id="v1_body"' in added.text
    assert 'id="ab_mode"' in added.text
    resp = await site.client.post(
        "/campaigns/new",
        data=form(site, name="AB", variants="2", v0_body=BODY, v1_body=BODY + " Today!",
                  v0_name="Plain", v0_weight="70", v1_weight="30", ab_mode="test",
                  ab_sample="0.3", ab_wait_minutes="90", ab_metric="click_rate",
                  ab_fallback="leader", op="save"),
    )  # fmt: skip
    assert resp.status_code == 303, field_error(resp.text, "weights")
    c = await service.campaigns.get(
        infra, int(resp.headers["location"].split("/")[2]), brand_id=site.brand_id
    )
    assert [(v["name"], v["weight"]) for v in c.variants] == [("Plain", 70.0), ("Variant B", 30.0)]
    assert c.ab is not None
    assert (c.ab["mode"], c.ab["sample"], c.ab["wait_minutes"]) == ("test", 0.3, 90)


async def test_another_brands_draft_is_not_found_and_a_post_needs_its_token(
    site: Site, infra: bootstrap.Infra
) -> None:
    theirs = await service.campaigns.create(
        infra, brand_id=site.other_brand_id, name="Contoso secret", body=BODY
    )
    for path in (f"/campaigns/{theirs}/edit", f"/campaigns/{theirs}/launch"):
        resp = await site.client.get(path)
        assert resp.status_code == 404
        assert "Contoso secret" not in resp.text
    resp = await site.client.post(
        f"/campaigns/{theirs}/edit", data=form(site, name="Mine now", v0_body=BODY)
    )
    assert resp.status_code == 404
    c = await service.campaigns.get(infra, theirs)
    assert c.name == "Contoso secret"
    refused = await site.client.post(
        "/campaigns/new", data={**form(site, name="x", v0_body=BODY), "csrf_token": "forged"}
    )
    assert refused.status_code == 403
    preview = await site.client.post(
        "/campaigns/compose/preview", data={"v0_body": BODY, "variants": "1"}
    )
    assert preview.status_code == 403
    assert await service.campaigns.listed(infra, site.brand_id) == []


def segment_form(
    site: Site, name: str, *rows: tuple[str, str, str, str], **extra: str
) -> dict[str, str]:
    data = {"csrf_token": site.csrf, "name": name, "match": "all", "rows": str(len(rows)),
            "editor": "rows", **extra}  # fmt: skip
    for i, (kind, field, op, value) in enumerate(rows):
        data.update({f"c{i}_kind": kind, f"c{i}_name": field, f"c{i}_op": op,
                     f"c{i}_value": value, f"c{i}_days": ""})  # fmt: skip
    return data


async def test_the_builder_counts_as_conditions_change_and_saves_the_apis_definition(
    site: Site, infra: bootstrap.Infra
) -> None:
    gold = ("attribute", "tier", "eq", "gold")
    texan = ("attribute", "state", "eq", "TX")
    count = await site.client.post("/segments/count", data=segment_form(site, "", gold))
    assert "2 subscribers" in text_of(count.text)
    both = await site.client.post("/segments/count", data=segment_form(site, "", gold, texan))
    assert "1 subscriber " in text_of(both.text) + " "
    either = await site.client.post(
        "/segments/count", data=segment_form(site, "", gold, texan, match="any")
    )
    assert "3 subscribers" in text_of(either.text)
    bad = await site.client.post(
        "/segments/count", data=segment_form(site, "", ("attribute", "9tier", "eq", "x"))
    )
    assert "Cannot count" in text_of(bad.text)
    saved = await site.client.post("/segments/new", data=segment_form(site, "Gold", gold))
    assert saved.status_code == 303
    segment_id = int(saved.headers["location"].split("/")[2].split("?")[0])
    s = await service.segments.get(infra, site.brand_id, segment_id)
    assert s.definition == {"all": [{"attribute": "tier", "op": "eq", "value": "gold"}]}
    listed = text_of((await site.client.get("/segments")).text)
    assert "Gold 2" in listed
    edit = await site.client.get(f"/segments/{segment_id}")
    assert 'value="tier"' in edit.text
    assert "2 subscribers" in text_of(edit.text)
    changed = await site.client.post(
        f"/segments/{segment_id}", data=segment_form(site, "Gold Texans", gold, texan)
    )
    assert changed.status_code == 303
    s = await service.segments.get(infra, site.brand_id, segment_id)
    assert (s.name, len(s.definition["all"])) == ("Gold Texans", 2)
    # an error is shown next to its row
    wrong = await site.client.post(
        f"/segments/{segment_id}",
        data=segment_form(site, "Gold", gold, ("field", "state", "contains", "T")),
    )
    assert wrong.status_code == 400
    assert "for state one of" in field_error(wrong.text, "c1_op")
    # the composer offers it as the audience
    composer = await site.client.get("/campaigns/new")
    assert f'<option value="{segment_id}">Segment: Gold Texans</option>' in composer.text
    made = await site.client.post(
        "/campaigns/new",
        data=form(site, name="To gold", v0_body=BODY, audience=str(segment_id), op="save"),
    )
    assert made.status_code == 303
    c = await service.campaigns.get(infra, int(made.headers["location"].split("/")[2]))
    assert c.segment_id == segment_id
    # in use: not deleted, and said why
    confirm = await site.client.post(
        f"/segments/{segment_id}", data={**segment_form(site, "x", gold), "op": "delete"}
    )
    assert "Yes, delete it" in confirm.text
    refused = await site.client.post(
        f"/segments/{segment_id}",
        data={**segment_form(site, "x", gold), "op": "delete-confirmed"},
    )
    assert refused.status_code == 409
    assert f"campaign(s) {c.id}" in text_of(refused.text)


async def test_a_segment_is_deleted_after_a_confirmation(
    site: Site, infra: bootstrap.Infra
) -> None:
    s = await service.segments.create(infra, site.brand_id, "Old", {"consent": "sms"})
    edit = await site.client.get(f"/segments/{s.id}")
    assert "Consent now" in edit.text
    gone = await site.client.post(
        f"/segments/{s.id}", data={"csrf_token": site.csrf, "op": "delete-confirmed"}
    )
    assert gone.status_code == 303
    assert await service.segments.listed(infra, site.brand_id) == []


async def test_a_definition_rows_cannot_show_is_edited_as_json(
    site: Site, infra: bootstrap.Infra
) -> None:
    nested = {"any": [{"consent": "sms"}, {"not": {"attribute": "tier", "op": "eq", "value": 1}}]}
    s = await service.segments.create(infra, site.brand_id, "Nested", nested)
    page = await site.client.get(f"/segments/{s.id}")
    assert 'id="definition_json"' in page.text
    assert "3 subscribers" in text_of(page.text)


async def test_another_brands_segment_is_not_found(site: Site, infra: bootstrap.Infra) -> None:
    theirs = await service.segments.create(
        infra, site.other_brand_id, "Contoso VIPs", {"consent": "sms"}
    )
    resp = await site.client.get(f"/segments/{theirs.id}")
    assert resp.status_code == 404
    assert "Contoso VIPs" not in resp.text
    assert "Contoso VIPs" not in (await site.client.get("/segments")).text
    deleted = await site.client.post(
        f"/segments/{theirs.id}", data={"csrf_token": site.csrf, "op": "delete-confirmed"}
    )
    assert deleted.status_code == 404
    assert (
        await service.segments.get(infra, site.other_brand_id, theirs.id)
    ).name == "Contoso VIPs"
    used = await site.client.post(
        "/campaigns/new",
        data=form(site, name="Theirs", v0_body=BODY, audience=str(theirs.id), op="save"),
    )
    assert used.status_code == 404
    assert (await site.client.get("/segments/abc")).status_code == 404
    no_token = await site.client.post("/segments/count", data={"rows": "1"})
    assert no_token.status_code == 403


async def launch_op(site: Site, campaign_id: int, op: str, **fields: str) -> httpx.Response:
    return await site.client.post(
        f"/campaigns/{campaign_id}/launch", data={"csrf_token": site.csrf, "op": op, **fields}
    )


async def test_a_draft_is_planned_then_launched_after_a_confirmation(
    site: Site, infra: bootstrap.Infra
) -> None:
    campaign_id = await service.campaigns.create(
        infra, brand_id=site.brand_id, name="Launch me", body=BODY
    )
    page = await site.client.get(f"/campaigns/{campaign_id}/launch")
    assert page.status_code == 200
    assert "No plan yet" in page.text
    planned = await launch_op(site, campaign_id, "plan")
    assert planned.status_code == 303
    shown = text_of((await site.client.get(planned.headers["location"])).text)
    assert "Send plan computed" in shown
    assert "Recipients 3" in shown
    asked = await launch_op(site, campaign_id, "launch", when="now")
    assert "Launch this campaign?" in text_of(asked.text)
    assert (await service.campaigns.get(infra, campaign_id)).status == "draft"  # not yet
    done = await launch_op(site, campaign_id, "launch-confirmed", when="now")
    assert done.status_code == 303
    assert (await service.campaigns.get(infra, campaign_id)).status == "sending"
    sending = text_of((await site.client.get(done.headers["location"])).text)
    assert "Pause…" in sending
    assert "Cancel campaign…" in sending
    assert (await launch_op(site, campaign_id, "pause-confirmed")).status_code == 303
    assert (await service.campaigns.get(infra, campaign_id)).status == "paused"
    assert (await launch_op(site, campaign_id, "resume-confirmed")).status_code == 303
    assert (await service.campaigns.get(infra, campaign_id)).status == "sending"
    cancel = await launch_op(site, campaign_id, "cancel")
    assert "This cannot be undone" in text_of(cancel.text)
    assert (await launch_op(site, campaign_id, "cancel-confirmed")).status_code == 303
    assert (await service.campaigns.get(infra, campaign_id)).status == "cancelled"
    again = await launch_op(site, campaign_id, "launch-confirmed", when="now")
    assert again.status_code == 409


async def test_a_launch_is_scheduled_at_a_time_a_local_time_or_the_best_time(
    site: Site, infra: bootstrap.Infra
) -> None:
    campaign_id = await service.campaigns.create(
        infra, brand_id=site.brand_id, name="Later", body=BODY
    )
    at = await launch_op(site, campaign_id, "launch-confirmed", when="at", at="2026-11-26T15:00")
    assert at.status_code == 303
    c = await service.campaigns.get(infra, campaign_id)
    assert (c.status, c.scheduled_at.isoformat()) == ("scheduled", "2026-11-26T15:00:00+00:00")
    assert (await launch_op(site, campaign_id, "unschedule-confirmed")).status_code == 303
    local = await launch_op(
        site, campaign_id, "launch-confirmed", when="local", local_time="10:00",
        local_day="2026-11-27",
    )  # fmt: skip
    assert local.status_code == 303
    c = await service.campaigns.get(infra, campaign_id)
    assert (c.local_time, str(c.local_day)) == ("10:00", "2026-11-27")
    await service.campaigns.unschedule(infra, campaign_id, brand_id=site.brand_id)
    best = await launch_op(site, campaign_id, "launch-confirmed", when="best", best_time_h="12")
    assert best.status_code == 303
    assert (await service.campaigns.get(infra, campaign_id)).best_time_h == 12
    await service.campaigns.unschedule(infra, campaign_id, brand_id=site.brand_id)
    wrong = await launch_op(site, campaign_id, "launch", when="best", best_time_h="99")
    assert wrong.status_code == 400
    assert "1 to 72 hours" in text_of(wrong.text)


async def test_a_launch_the_checks_refuse_lists_the_problems(
    site: Site, infra: bootstrap.Infra
) -> None:
    campaign_id = await service.campaigns.create(
        infra, brand_id=site.brand_id, name="No brand", body="Hi {{ first_name }}!"
    )
    page = text_of((await site.client.get(f"/campaigns/{campaign_id}/launch")).text)
    assert "must name the brand" in page
    refused = await launch_op(site, campaign_id, "launch-confirmed", when="now")
    assert refused.status_code == 400
    assert "must say how to opt out" in text_of(refused.text)
    assert (await service.campaigns.get(infra, campaign_id)).status == "draft"
    no_token = await site.client.post(
        f"/campaigns/{campaign_id}/launch", data={"op": "launch-confirmed", "when": "now"}
    )
    assert no_token.status_code == 403


async def test_a_text_that_reads_recommendations_previews_them_or_says_there_are_none(
    site: Site,
) -> None:
    body = "{{ brand.name }}: try {{ recommendations[0].name }}. Reply STOP to opt out."
    resp = await site.client.post("/campaigns/compose/preview", data=form(site, v0_body=body))
    assert resp.status_code == 200
    shown = text_of(resp.text)
    assert "Recommendations for this subscriber" in shown
    assert "None to show" in shown
