"""The web UI's settings: API keys (the secret shown once; a revoked key is refused by the
API), webhook endpoints, the link domain, attribution windows, smart sending and carrier
limits, each through the use case the API or CLI calls; bad input shown next to its field;
another brand's records are 404; every form needs its CSRF token. httpx against the HTTP app
`clarion run` serves, on real Postgres."""

from __future__ import annotations

import html
import re

import pytest

from clarion import bootstrap, service
from tests.integration.test_web_auth import PASSWORD, Site, csrf_of, sign_in


async def signed_in(site: Site) -> str:
    """Sign Ada in; the CSRF token of her session."""
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    return csrf_of((await site.client.get("/settings")).text)


def error_of(page: str, field_id: str) -> str:
    """The error shown next to a field (by the field's id)."""
    found = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">([^<]*)</p>', page)
    assert found, f"no error next to {field_id}"
    return html.unescape(found.group(1))


async def test_a_key_is_made_with_its_secret_shown_once_and_revoked_the_api_refuses_it(
    site: Site, infra: bootstrap.Infra
) -> None:
    token = await signed_in(site)
    empty = await site.client.get("/settings")
    assert "No API keys yet" in empty.text
    assert '<label for="key-name">Name</label>' in empty.text

    made = await site.client.post(
        "/settings/keys",
        data={"csrf_token": token, "name": "Shopify sync", "scope_read": "1", "rate_per_s": ""},
    )
    assert made.status_code == 201
    secret = re.search(
        r'id="new-key-secret" class="secret" type="text" readonly value="([^"]+)"', made.text
    )
    assert secret
    (key,) = await service.keys.listed(infra, site.brand_id)
    assert key.scopes == ["read"]
    assert f"…{key.hint}" in made.text
    assert secret.group(1).endswith(key.hint)

    api = {"Authorization": f"Bearer {secret.group(1)}"}
    assert (await site.client.get("/v1/brand", headers=api)).status_code == 200
    listed = (await site.client.get("/settings")).text
    assert secret.group(1) not in listed  # shown once, never again
    assert "Shopify sync" in listed
    assert "Revoke key Shopify sync" in listed

    assert (await site.client.post(f"/settings/keys/{key.id}/revoke", data={})).status_code == 403
    revoked = await site.client.post(f"/settings/keys/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == "/settings?done=revoked#keys"
    assert (await site.client.get("/v1/brand", headers=api)).status_code == 401
    after = (await site.client.get(revoked.headers["location"])).text
    assert "The key is revoked" in after
    assert "Revoke key Shopify sync" not in after


async def test_a_key_without_a_name_or_scope_is_refused_next_to_its_field(site: Site) -> None:
    token = await signed_in(site)
    nameless = await site.client.post(
        "/settings/keys", data={"csrf_token": token, "name": " ", "scope_read": "1"}
    )
    assert nameless.status_code == 422
    assert "1 to 100 characters" in error_of(nameless.text, "key-name")
    assert 'aria-invalid="true"' in nameless.text
    scopeless = await site.client.post("/settings/keys", data={"csrf_token": token, "name": "x"})
    assert scopeless.status_code == 422
    assert "At least one of read, write, send" in error_of(scopeless.text, "key-scopes")
    # the name typed is kept, the boxes left unticked stay unticked
    assert 'id="key-name" name="name" type="text" value="x"' in scopeless.text
    assert 'name="scope_read" value="1" checked' not in scopeless.text


async def test_a_webhook_endpoint_is_added_disabled_enabled_and_deleted(
    site: Site, infra: bootstrap.Infra
) -> None:
    token = await signed_in(site)
    bad = await site.client.post(
        "/settings/webhooks",
        data={"csrf_token": token, "url": "http://example.com/h", "event_message.delivered": "1"},
    )
    assert bad.status_code == 422
    assert "https" in error_of(bad.text, "hook-url")
    typeless = await site.client.post(
        "/settings/webhooks", data={"csrf_token": token, "url": "https://shop.example/clarion"}
    )
    assert typeless.status_code == 422
    assert error_of(typeless.text, "hook-event_types") == "At least one event type."
    made = await site.client.post(
        "/settings/webhooks",
        data={"csrf_token": token, "url": "https://shop.example/clarion",
              "event_message.delivered": "1", "event_subscriber.opted_out": "1"},
    )  # fmt: skip
    assert made.status_code == 201
    assert re.search(
        r'id="new-hook-secret" class="secret" type="text" readonly value="whsec_', made.text
    )
    (hook,) = await service.hooks.listed(infra, site.brand_id, after_id=0, limit=10)
    assert hook.event_types == ["message.delivered", "subscriber.opted_out"]
    assert hook.enabled

    page = await site.client.get(f"/settings/webhooks/{hook.id}")
    assert page.status_code == 200
    assert "Nothing delivered yet" in page.text

    off = await site.client.post(
        f"/settings/webhooks/{hook.id}/disable", data={"csrf_token": token}
    )
    assert off.status_code == 303
    hook = await service.hooks.get(infra, site.brand_id, hook.id)
    assert not hook.enabled
    assert hook.disabled_reason == "disabled by ada@northwind.example"
    on = await site.client.post(f"/settings/webhooks/{hook.id}/enable", data={"csrf_token": token})
    assert on.status_code == 303
    assert (await service.hooks.get(infra, site.brand_id, hook.id)).enabled
    gone = await site.client.post(
        f"/settings/webhooks/{hook.id}/delete", data={"csrf_token": token}
    )
    assert gone.headers["location"] == "/settings?done=deleted#webhooks"
    assert await service.hooks.listed(infra, site.brand_id, after_id=0, limit=10) == []


async def test_the_link_domain_and_attribution_windows_change_and_bad_values_are_refused(
    site: Site, infra: bootstrap.Infra
) -> None:
    token = await signed_in(site)
    await service.links.set_link_domain(infra, site.other_brand_id, "go.contoso.example")
    saved = await site.client.post(
        "/settings/link-domain",
        data={"csrf_token": token, "link_domain": "Links.Northwind.example"},
    )
    assert saved.status_code == 303
    assert (await service.brands.get(infra, site.brand_id)).link_domain == "links.northwind.example"
    page = (await site.client.get(saved.headers["location"])).text
    assert 'value="links.northwind.example"' in page
    assert "The link domain is saved" in page

    theirs = await site.client.post(
        "/settings/link-domain", data={"csrf_token": token, "link_domain": "go.contoso.example"}
    )
    assert theirs.status_code == 409
    assert "another brand's link domain" in error_of(theirs.text, "link-link_domain")
    nonsense = await site.client.post(
        "/settings/link-domain", data={"csrf_token": token, "link_domain": "not a host"}
    )
    assert nonsense.status_code == 422
    assert "host name" in error_of(nonsense.text, "link-link_domain")
    assert (await service.brands.get(infra, site.brand_id)).link_domain == "links.northwind.example"

    windows = await site.client.post(
        "/settings/attribution",
        data={"csrf_token": token, "click_window_h": "72", "view_window_h": "12.5"},
    )
    assert windows.status_code == 303
    b = await service.brands.get(infra, site.brand_id)
    assert (b.click_window_h, b.view_window_h) == (72.0, 12.5)
    for click, view, field, reason in (
        ("9999", "12", "attr-click_window_h", "Between 0 and 2160 hours."),
        ("72", "-1", "attr-view_window_h", "Between 0 and 2160 hours."),
        ("seventy", "12", "attr-click_window_h", "A number."),
        ("nan", "12", "attr-click_window_h", "A number."),
    ):
        refused = await site.client.post(
            "/settings/attribution",
            data={"csrf_token": token, "click_window_h": click, "view_window_h": view},
        )
        assert refused.status_code == 422
        assert error_of(refused.text, field) == reason
        assert f'value="{click}"' in refused.text  # what was typed stays in the box
    b = await service.brands.get(infra, site.brand_id)
    assert (b.click_window_h, b.view_window_h) == (72.0, 12.5)


async def test_smart_sending_and_carrier_limits_change_within_bounds(
    site: Site, infra: bootstrap.Infra
) -> None:
    token = await signed_in(site)
    page = (await site.client.get("/settings")).text
    assert 'value="16.0"' in page  # smart sending's default
    assert "Read only: provider accounts" in page
    assert (
        await site.client.post(
            "/settings/smart-sending", data={"csrf_token": token, "smart_sending_h": "24"}
        )
    ).status_code == 303
    assert (await service.brands.get(infra, site.brand_id)).smart_sending_h == 24.0
    too_long = await site.client.post(
        "/settings/smart-sending", data={"csrf_token": token, "smart_sending_h": "1000"}
    )
    assert too_long.status_code == 422
    assert "Between 0 (off) and 168 hours" in error_of(too_long.text, "smart-smart_sending_h")

    saved = await site.client.post(
        "/settings/carriers",
        data={"csrf_token": token, "carrier": "T-Mobile", "per_minute": "", "per_day": "2000"},
    )
    assert saved.status_code == 303
    rows = await infra.pool.fetch("SELECT kind, key, per_day FROM lane_limits ORDER BY kind")
    assert [tuple(r) for r in rows] == [("brand_carrier_day", f"{site.brand_id}:T-Mobile", 2000)]
    await site.client.post(
        "/settings/carriers",
        data={"csrf_token": token, "carrier": "AT&T", "per_minute": "600", "per_day": ""},
    )
    rate = await infra.pool.fetchval(
        "SELECT rate_per_s FROM lane_limits WHERE kind = 'carrier_minute' AND key = $1",
        f"{site.brand_id}:*:AT&T",
    )
    assert rate == pytest.approx(10.0)
    over = await site.client.post(
        "/settings/carriers",
        data={"csrf_token": token, "carrier": "T-Mobile", "per_minute": "", "per_day": "250000"},
    )
    assert over.status_code == 422
    assert "Between 1 and 200,000 a day." in over.text
    assert 'value="250000"' in over.text
    wildcard = await site.client.post(
        "/settings/carriers", data={"csrf_token": token, "carrier": "*", "per_day": "5"}
    )
    assert wildcard.status_code == 422  # never the install's default rows
    assert await infra.pool.fetchval("SELECT count(*) FROM lane_limits") == 2


async def test_another_brands_key_and_endpoint_are_not_found(
    site: Site, infra: bootstrap.Infra
) -> None:
    their_key, _ = await service.keys.create(infra, site.other_brand_id, "Contoso secret key")
    their_hook, _ = await service.hooks.create(
        infra, site.other_brand_id, "https://contoso.example/h", ["message.delivered"]
    )
    token = await signed_in(site)
    page = (await site.client.get("/settings")).text
    assert "Contoso secret key" not in page
    assert "contoso.example" not in page
    assert (await site.client.get(f"/settings/webhooks/{their_hook.id}")).status_code == 404
    for path in (
        f"/settings/keys/{their_key.id}/revoke",
        f"/settings/webhooks/{their_hook.id}/disable",
        f"/settings/webhooks/{their_hook.id}/delete",
    ):
        resp = await site.client.post(path, data={"csrf_token": token})
        assert resp.status_code == 404, path
    assert (await service.keys.get(infra, site.other_brand_id, their_key.id)).revoked_at is None
    assert (await service.hooks.get(infra, site.other_brand_id, their_hook.id)).enabled


async def test_every_settings_form_needs_the_csrf_token(site: Site, infra: bootstrap.Infra) -> None:
    await signed_in(site)
    for path, data in (
        ("/settings/keys", {"name": "k", "scope_read": "1"}),
        ("/settings/webhooks", {"url": "https://a.example/h", "event_message.delivered": "1"}),
        ("/settings/link-domain", {"link_domain": "links.northwind.example"}),
        ("/settings/attribution", {"click_window_h": "1", "view_window_h": "1"}),
        ("/settings/smart-sending", {"smart_sending_h": "0"}),
        ("/settings/carriers", {"carrier": "AT&T", "per_day": "10"}),
    ):
        resp = await site.client.post(path, data={**data, "csrf_token": "forged"})
        assert resp.status_code == 403, path
    assert await service.keys.listed(infra, site.brand_id) == []
    assert await service.hooks.listed(infra, site.brand_id, after_id=0, limit=10) == []
    b = await service.brands.get(infra, site.brand_id)
    assert (b.link_domain, b.click_window_h, b.smart_sending_h) == (None, 120.0, 16.0)
