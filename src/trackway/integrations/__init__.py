"""Integrations with other tools: ConfigCat webhooks, and flag evaluation analytics for apps."""
