"""Alerts from senders other than Alertmanager (Sentry, GitHub): verified the way each sender
signs, normalized into the same alert notices, and handed to the one `AlertService` path."""
