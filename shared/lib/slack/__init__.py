"""Slack interactivity: Approve / Reject buttons on approval messages, verified and decided."""
