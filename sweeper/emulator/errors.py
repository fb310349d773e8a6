"""AWS errors as the emulator sends them: ``{"__type", "message", "Message"}`` + status."""

from __future__ import annotations


class AwsError(Exception):
    """An error answer. Modeled SageMaker exceptions use HTTP 400, like AWS."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message, "Message": self.message}


class ScriptFailure(Exception):
    """A job failed because of what the user sent (its FailureReason is the message)."""


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def not_found() -> AwsError:
    """What DescribeTrainingJob answers for an unknown job (ValidationException, not 404)."""
    return validation("Requested resource not found.")
