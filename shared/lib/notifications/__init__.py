"""Webhook notifications of approval and workflow events, signed, retried, off the hot path."""

from shared.lib.notifications.config import load_notifications
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.notifications.formats import render, sign, verify_signature
from shared.lib.notifications.models import (
    DeliveryPolicy,
    Notification,
    NotificationEvent,
    NotificationsConfig,
    Receiver,
)
from shared.lib.notifications.service import Notifier

__all__ = [
    "DeliveryPolicy",
    "Notification",
    "NotificationDispatcher",
    "NotificationEvent",
    "NotificationsConfig",
    "Notifier",
    "Receiver",
    "load_notifications",
    "render",
    "sign",
    "verify_signature",
]
