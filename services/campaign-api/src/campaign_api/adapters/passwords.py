"""Passwords hashed with argon2id (argon2-cffi's defaults, RFC 9106's second choice), off
the event loop: a hash takes tens of milliseconds of CPU on purpose."""

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified when the email is unknown, so that an unknown email costs what a wrong
        # password costs: the time of the answer says nothing of which accounts exist.
        self.decoy = self._hasher.hash("a password no account has")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
