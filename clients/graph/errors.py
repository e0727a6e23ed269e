"""Errors of the Graph client: a refused permission names the Graph permission to grant."""

from __future__ import annotations

from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

ERRORS = {"XXX": ODataError}  # the SDK's error mapping: any failed status parses Graph's error body

# The least-privileged application permission of each call (admin consent required).
PERMISSIONS = {
    "subscribedSkus": "Organization.Read.All",
    "users": "User.Read.All",
    "signInActivity": "AuditLog.Read.All",
    "groups": "GroupMember.Read.All",
    "devices": "Device.Read.All",
    "members": "GroupMember.ReadWrite.All",
}


class GraphPermissionError(Exception):
    """Graph answered 403: the application lacks ``permission`` for ``what``."""

    def __init__(self, what: str, permission: str, detail: str = "") -> None:
        self.what, self.permission = what, permission
        text = (f"Microsoft Graph refused to {what} (403 Forbidden): grant the application the "
                f"Graph permission {permission} (with admin consent)")
        if permission == PERMISSIONS["members"]:
            text += "; role-assignable groups also need RoleManagement.ReadWrite.Directory"
        if permission == PERMISSIONS["signInActivity"]:
            text += " and a Microsoft Entra ID P1 or P2 tenant"
        super().__init__(f"{text}. Graph said: {detail}" if detail else text)


class DeltaExpired(Exception):
    """The stored delta link is no longer accepted: directory delta links live seven days, then
    Graph answers 400 ``syncStateNotFound`` (other resources 410 Gone or ``resyncRequired``)."""


def expired_delta(exc: APIError) -> bool:
    """Whether ``exc`` says the delta link has expired."""
    error = getattr(exc, "error", None)
    code = ((error.code if error is not None else None) or "").lower()
    return exc.response_status_code == 410 or code in ("syncstatenotfound", "resyncrequired")


def describe(exc: APIError) -> str:
    """``code: message`` from a Graph error body, else the SDK's text."""
    error = getattr(exc, "error", None)
    if error is not None and (error.code or error.message):
        return f"{error.code}: {error.message}"
    return str(exc)


def refused(exc: APIError, what: str, key: str) -> Exception:
    """The error to raise for a failed call: a permission error for 403, else ``exc`` itself."""
    if exc.response_status_code == 403:
        return GraphPermissionError(what, PERMISSIONS[key], describe(exc))
    return exc
