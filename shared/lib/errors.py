"""Domain errors: raised by services, mapped to HTTP statuses once, in the app."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; the message names the thing and the way out."""

    status_code = 400


class NotFoundError(DomainError):
    status_code = 404


class ForbiddenError(DomainError):
    status_code = 403


class ConflictError(DomainError):
    status_code = 409


class InvalidRequestError(DomainError):
    status_code = 422
