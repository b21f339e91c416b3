"""Recommendations in a message (pipeline/recommendations.py and the personalize core): how a
template reads them, each recipient's own products then popular ones, tracked short links
made per batch, and a clear reason when there is nothing to show."""

from __future__ import annotations

from clarion.domain.catalog import Product
from clarion.domain.records import Recipient, RecipientBatch
from clarion.pipeline import personalize
from clarion.pipeline import recommendations as recs
from clarion.pipeline.links import read_code

SECRET = "test-secret"
BODY = "Hi! {{ recommendations[0].name }} {{ recommendations[0].url }} Reply STOP to opt out."
PRODUCTS = {
    f"p{i}": Product(id=f"p{i}", name=f"Product {i}", url=f"https://shop.example/p/{i}",
                     price=10.0 + i)
    for i in range(6)
}  # fmt: skip


def batch(ids: list[int]) -> RecipientBatch:
    return RecipientBatch(
        batch_id="b", brand_id=1, campaign_id=1,
        recipients=[
            Recipient(subscriber_id=i, phone=f"+1512555{i:04d}", timezone=None, fields={})
            for i in ids
        ],
    )  # fmt: skip


def test_how_a_template_reads_recommendations() -> None:
    assert recs.use_of(["Hi {{ first_name }}"]) is None
    assert recs.use_of([BODY]) == recs.Use(1, urls=True)
    assert recs.use_of(["{{ recommendations[2].name }}"]) == recs.Use(3, urls=False)
    loop = "{% for r in recommendations %}{{ r.name }}{% endfor %}"
    assert recs.use_of([loop]) == recs.Use(recs.LIST_SIZE, urls=True)
    assert recs.use_of(["{{ recommendations[0].name }}", "{{ recommendations[1].url }}"]) == (
        recs.Use(2, urls=True)
    )


def test_each_gets_their_own_in_stock_products_and_a_newcomer_the_popular_ones() -> None:
    products: dict[str, Product | None] = {**PRODUCTS, "p1": None}  # p1 sold out
    picked = recs.chosen(
        [1, 2, 3], {1: ["p1", "p2", "p3"], 2: ["p4"]}, popular=["p0", "p4", "p5"],
        products=products, count=2,
    )  # fmt: skip
    assert [[p.id for p in ps] for ps in picked] == [["p2", "p3"], ["p4", "p0"], ["p0", "p4"]]


def test_a_tracked_url_is_each_recipients_own_short_link() -> None:
    picked = recs.chosen([7, 8], {7: ["p2"], 8: ["p3"]}, popular=[], products=PRODUCTS, count=1)
    links = {"https://shop.example/p/2": 41, "https://shop.example/p/3": 42}
    tracking = recs.Tracking(base="https://go.example/l/", links=links, secret=SECRET)
    shown = recs.to_show([7, 8], picked, tracking, {})
    for sid, link in ((7, 41), (8, 42)):
        (r,) = shown[sid]
        assert r.url.startswith("https://go.example/l/")
        assert read_code(SECRET, r.url.removeprefix("https://go.example/l/")) == (link, sid)
    untracked = recs.to_show([7], picked[:1], None, {})
    assert untracked[7][0].url == "https://shop.example/p/2"


def test_a_message_shows_the_recipients_products_by_the_fast_path_and_by_jinja() -> None:
    template = personalize.compile_template(BODY)
    assert template.pieces is not None  # filled in without Jinja
    slow = personalize.compile_template(BODY + "{% if recommendations %}!{% endif %}")
    assert slow.pieces is None
    picked = recs.chosen([1, 2], {1: ["p2"], 2: ["p5"]}, popular=[], products=PRODUCTS, count=1)
    shown = recs.to_show([1, 2], picked, None, {})
    for t, end in ((template, ""), (slow, "!")):
        out = personalize.render_batch(
            t, batch([1, 2]), campaign_uid="u", brand={}, sender="+1", recommendations=shown
        )
        assert [m.body for m in out.messages] == [
            f"Hi! Product 2 https://shop.example/p/2 Reply STOP to opt out.{end}",
            f"Hi! Product 5 https://shop.example/p/5 Reply STOP to opt out.{end}",
        ]


def test_nothing_to_show_fails_the_recipient_with_a_clear_reason() -> None:
    template = personalize.compile_template(BODY)
    out = personalize.render_batch(
        template, batch([1]), campaign_uid="u", brand={}, sender="+1", recommendations={}
    )
    assert not out.messages
    assert out.failures[0].error == recs.NONE_REASON
