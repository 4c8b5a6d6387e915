"""Identity's request and response shapes, and its domain records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Role = Literal["admin", "client"]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    username: Username
    password: Password
    name: Name = ""
    email: Email | None = None


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UpdateMeRequest(Strict):
    name: Name | None = None
    email: Email | None = None


class ChangePasswordRequest(Strict):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class CreateUserRequest(Strict):
    username: Username
    password: Password
    role: Role = "client"
    name: Name = ""
    email: Email | None = None


class UpdateUserRequest(Strict):
    username: Username | None = None
    password: Password | None = None
    role: Role | None = None
    name: Name | None = None
    email: Email | None = None


class ListUsersQuery(Strict):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None
    q: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="A username prefix, without case.")


class UserOut(BaseModel):
    id: str
    username: str
    role: Role
    name: str
    email: str | None
    created_at: str


class UserEnvelope(BaseModel):
    user: UserOut


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    user: UserOut


@dataclass(frozen=True)
class User:
    """A stored user (without the password hash)."""

    id: str
    username: str
    role: str
    name: str
    email: str | None
    created_at: str
    version: int
    tokens_valid_after: float

    def out(self) -> UserOut:
        return UserOut(
            id=self.id, username=self.username, role=self.role,  # type: ignore[arg-type]
            name=self.name, email=self.email, created_at=self.created_at,
        )
