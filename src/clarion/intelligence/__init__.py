"""What Clarion learns from what it records: each subscriber's best local hour to hear from
a brand (`sto`), the products each is likely to buy next (`recs`), and how to split an A/B
test's traffic while it sends (`adaptive`). Pure: models fit on rows the store read and
answer with plain values; the store keeps their versions and output."""
