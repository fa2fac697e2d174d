"""Typed failures of the read-only gateways; the runner turns them into `unknown` findings."""

from __future__ import annotations


class GatewayError(Exception):
    """An Azure call that did not give an answer: names the call and, for 401/403, what the bot lacks."""

    def __init__(
        self,
        call: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str = "",
        permission: str | None = None,
    ) -> None:
        self.call = call
        self.status = status
        self.code = code
        self.message = message
        self.permission = permission
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """One sentence for a person: which call, what happened, what to grant."""
        what = f"HTTP {self.status}" if self.status else "no answer"
        if self.code:
            what += f" {self.code}"
        text = f"{self.call} failed ({what})"
        if self.message:
            text += f": {self.message}"
        if self.permission and self.status in (401, 403):
            text += f". The bot's identity needs {self.permission}"
        return text

    def as_evidence(self) -> dict[str, object]:
        return {
            "call": self.call,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "permission": self.permission,
        }


class NotFoundError(GatewayError):
    """The thing asked for does not exist (HTTP 404): often itself the finding."""


class CallTimeoutError(GatewayError):
    """The call did not finish within its timeout."""

    def __init__(self, call: str, seconds: float) -> None:
        super().__init__(call, code="Timeout", message=f"no answer within {seconds:g} s")
