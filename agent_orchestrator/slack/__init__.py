"""Slack's interactivity endpoint (the Request URL of the Slack app)."""
