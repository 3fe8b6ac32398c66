"""The Alertmanager webhook: alerts in, recovery workflows (or escalations) out."""
