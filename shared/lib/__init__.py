"""Reusable library code of the DevOps agent."""
