"""HTTP: provider webhooks, health and metrics (the /v1 API grows here)."""
