"""Approval endpoints: list, show, approve, reject (and edit through approve)."""
