"""Incidents out to the team's issue tracker (GitHub Issues, Linear, Jira): one issue per
incident, a comment when it changes, closed when it resolves; retried, never in the way."""
