"""Errors a service raises for a person to read; views and the API turn them into responses."""


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message  # may be a lazy translation: rendered in the reader's language
        self.code = code or self.code
        self.field = field

    @property
    def fields(self) -> dict | None:
        """{field: [message]} for the API's 422s and forms' inline errors."""
        return {self.field: [str(self.message)]} if self.field else None


class Invalid(ServiceError):
    status, code = 422, "invalid"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"
