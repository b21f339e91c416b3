"""The web UI's conversations: a free-text reply, through the inbound stage, lands in the
brand's inbox; a user reads the thread and answers it on the transactional path, through
the gate of `POST /v1/messages` — refused for a subscriber who texted STOP. httpx against
the HTTP app `clarion run` serves, on real Postgres and NATS."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import timedelta

from clarion import bootstrap, service
from clarion.domain.records import InboundBatch, InboundMessage
from clarion.runtime.context import WorkerContext
from clarion.runtime.inbound_worker import InboundWorker
from clarion.sim.process import SimProcess
from tests.conftest import DAYTIME
from tests.integration.helpers import daytime
from tests.integration.test_web_auth import PASSWORD, Site, csrf_of, sign_in

SENDER = "+15125550100"
OTHER_SENDER = "+15125550199"
_ids = itertools.count(1)


async def subscriber(infra: bootstrap.Infra, brand_id: int, phone: str, first: str) -> int:
    made = await service.subscribers.create(
        infra, brand_id,
        {"phone": phone, "first_name": first, "consent": {"sms": {"source": "checkout form"}}},
    )  # fmt: skip
    return made.id


async def texts(infra: bootstrap.Infra, phone: str, body: str, *, to: str = SENDER) -> None:
    """The handset at `phone` texts the brand's number: the inbound stage takes it in."""
    n = next(_ids)
    worker = InboundWorker(
        WorkerContext(infra.pool, infra.bus, bootstrap.build_provider(infra.settings))
    )
    await worker(
        InboundBatch(
            batch_id=f"web-conv-{n}", provider="sim",
            messages=[InboundMessage(provider_message_id=f"in-{n}", from_=phone, to=to,
                                     body=body, received_at=DAYTIME + timedelta(minutes=n))],
        )
    )  # fmt: skip


def rows_of(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [r for r in body.split("</tr>") if "<th" in r]


async def test_a_free_text_reply_lands_in_the_inbox_and_keywords_do_not(
    site: Site, infra: bootstrap.Infra
) -> None:
    grace = await subscriber(infra, site.brand_id, "+15125551001", "Grace")
    linus = await subscriber(infra, site.brand_id, "+15125551002", "Linus")
    await subscriber(infra, site.brand_id, "+15125551003", "Quiet")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    empty = await site.client.get("/conversations")
    assert empty.status_code == 200
    assert "No conversations yet" in empty.text

    await texts(infra, "+15125551001", "Do you have the boots in blue?")
    await texts(infra, "+15125551002", "HELP")  # a keyword: the pipeline's, no thread
    await texts(infra, "+15125551002", "What time do you open on Sunday?")
    await texts(infra, "+15125551003", "STOP")

    inbox = await site.client.get("/conversations")
    rows = rows_of(inbox.text)
    assert len(rows) == 2  # Quiet said only STOP
    assert "Linus" in rows[0]
    assert "Sunday" in rows[0]
    assert "Grace" in rows[1]
    assert "boots in blue" in rows[1]
    assert all("Unread" in r for r in rows)

    thread = await site.client.get(f"/conversations/{grace}")
    assert thread.status_code == 200
    assert "Do you have the boots in blue?" in thread.text
    assert '<label for="answer-body">Your answer</label>' in thread.text
    # opened: Grace's thread is read, so Linus's unread one comes first and Grace's is not
    rows = rows_of((await site.client.get("/conversations")).text)
    assert "Linus" in rows[0]
    assert "Unread" in rows[0]
    assert "Grace" in rows[1]
    assert "Unread" not in rows[1]
    # Linus's thread shows his HELP (a keyword) and his question in time order
    linus_page = (await site.client.get(f"/conversations/{linus}")).text
    assert linus_page.index("keyword: help") < linus_page.index("What time do you open")
    # a new reply makes Grace's thread unread again, and first
    await texts(infra, "+15125551001", "Size 9 please")
    rows = rows_of((await site.client.get("/conversations")).text)
    assert "Grace" in rows[0]
    assert "Size 9 please" in rows[0]
    assert "Unread" in rows[0]


async def test_an_answer_goes_on_the_transactional_path_and_shows_in_the_thread(
    site: Site, infra: bootstrap.Infra
) -> None:
    grace = await subscriber(infra, site.brand_id, "+15125551001", "Grace")
    await texts(infra, "+15125551001", "Do you have the boots in blue?")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    page = (await site.client.get(f"/conversations/{grace}")).text
    key = re.search(r'name="answer_key" value="([^"]+)"', page)
    assert key
    form = {"csrf_token": csrf_of(page), "answer_key": key.group(1),
            "body": "Yes! Navy and sky blue, all sizes."}  # fmt: skip

    assert (await site.client.post(f"/conversations/{grace}", data={**form, "csrf_token": ""})
            ).status_code == 403  # fmt: skip
    sent = await site.client.post(f"/conversations/{grace}", data=form)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/conversations/{grace}?sent=1"
    again = await site.client.post(f"/conversations/{grace}", data=form)  # a double submit
    assert again.status_code == 303
    thread = (await site.client.get(sent.headers["location"])).text
    assert "Your answer is queued" in thread
    assert thread.count("Navy and sky blue") == 1
    assert thread.index("boots in blue") < thread.index("Navy and sky blue")
    assert "answered by ada@northwind.example" in thread

    # the same message id the API would queue for it, once
    msg_ids = await infra.pool.fetch("SELECT message_id FROM conversation_answers")
    assert len(msg_ids) == 1
    # bad input is shown next to the field, never a 500
    empty = await site.client.post(
        f"/conversations/{grace}", data={**form, "answer_key": "other", "body": "  "}
    )
    assert empty.status_code == 422
    assert 'id="answer-error"' in empty.text
    assert "Empty." in empty.text
    assert 'aria-invalid="true"' in empty.text


async def test_an_answer_to_a_subscriber_who_opted_out_is_refused(
    site: Site, infra: bootstrap.Infra
) -> None:
    grace = await subscriber(infra, site.brand_id, "+15125551001", "Grace")
    await texts(infra, "+15125551001", "Are you open today?")
    await texts(infra, "+15125551001", "Stop")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    page = (await site.client.get(f"/conversations/{grace}")).text
    assert "This subscriber opted out (STOP)" in page
    assert "keyword: opt out" in page
    refused = await site.client.post(
        f"/conversations/{grace}",
        data={"csrf_token": csrf_of(page), "answer_key": "k1", "body": "We are open till 8!"},
    )
    assert refused.status_code == 409
    assert "Not sent: +15125551001 opted out of Northwind (STOP)." in refused.text
    assert "We are open till 8!" in refused.text  # the draft is kept in the box
    assert await infra.pool.fetchval("SELECT count(*) FROM conversation_answers") == 0


async def test_another_brands_thread_is_not_found(site: Site, infra: bootstrap.Infra) -> None:
    theirs = await subscriber(infra, site.other_brand_id, "+15125551009", "Secret")
    await texts(infra, "+15125551009", "Contoso secret question", to=OTHER_SENDER)
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    assert "Contoso secret" not in (await site.client.get("/conversations")).text
    resp = await site.client.get(f"/conversations/{theirs}")
    assert resp.status_code == 404
    assert "Contoso secret" not in resp.text
    token = csrf_of((await site.client.get("/conversations/999999")).text)
    answer = await site.client.post(
        f"/conversations/{theirs}", data={"csrf_token": token, "answer_key": "k", "body": "hi"}
    )
    assert answer.status_code == 404
    assert await infra.pool.fetchval("SELECT count(*) FROM conversation_answers") == 0
    assert (await site.client.get("/conversations/abc")).status_code == 400


async def test_an_answer_reaches_the_handset_through_the_running_pipeline(
    site: Site, infra: bootstrap.Infra, sim: SimProcess
) -> None:
    grace = await subscriber(infra, site.brand_id, "+15125551001", "Grace")
    await texts(infra, "+15125551001", "Is the sale still on?")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    page = (await site.client.get(f"/conversations/{grace}")).text
    async with bootstrap.running(infra, bootstrap.build_provider(infra.settings), clock=daytime):
        sent = await site.client.post(
            f"/conversations/{grace}",
            data={"csrf_token": csrf_of(page), "answer_key": "k1", "body": "Until Sunday!"},
        )
        assert sent.status_code == 303
        for _ in range(200):
            inbox = await asyncio.to_thread(sim.handset, "+15125551001")
            if inbox:
                break
            await asyncio.sleep(0.1)
    assert [m["body"] for m in inbox] == ["Until Sunday!"]
    thread = (await site.client.get(f"/conversations/{grace}")).text
    assert thread.count("Until Sunday!") == 1
    assert "transactional · queued" not in thread  # recorded by its stage, with its status


async def test_erasing_a_subscriber_erases_the_answers_sent_to_them(
    site: Site, infra: bootstrap.Infra
) -> None:
    grace = await subscriber(infra, site.brand_id, "+15125551001", "Grace")
    await texts(infra, "+15125551001", "Please forget me after this: is the sale on?")
    await sign_in(site.client, "ada@northwind.example", PASSWORD)
    page = (await site.client.get(f"/conversations/{grace}")).text
    await site.client.post(
        f"/conversations/{grace}",
        data={"csrf_token": csrf_of(page), "answer_key": "k1", "body": "Yes, Grace, until Sunday"},
    )
    await service.subscribers.erase(infra, site.brand_id, grace, source="request")
    assert await infra.pool.fetchval("SELECT body FROM conversation_answers") == ""
    assert (await site.client.get(f"/conversations/{grace}")).status_code == 404
    assert "Grace" not in (await site.client.get("/conversations")).text
