"""What the mailer remembers, in memory, of the email.test being handled: which of its
addresses are done (the SMTP server took the email, or refused it for good), so that a
retry after the server's trouble sends only to the others, never twice to one address."""

from dataclasses import dataclass, field
from uuid import UUID


@dataclass
class TestProgress:
    __test__ = False  # not a pytest test class

    accepted: set[int] = field(default_factory=set)  # indexes in `to` the server took
    refused: dict[int, str] = field(default_factory=dict)  # indexes refused for good, and why

    def done(self, index: int) -> bool:
        return index in self.accepted or index in self.refused


class EmailTestsInFlight:
    """By test_id, kept from a try of a test to its retry, and forgotten once the test is
    settled (all sent, or rejected). A lost process forgets: then a retry may send again."""

    def __init__(self) -> None:
        self._progress: dict[UUID, TestProgress] = {}

    def of(self, test_id: UUID) -> TestProgress:
        return self._progress.setdefault(test_id, TestProgress())

    def forget(self, test_id: UUID) -> None:
        self._progress.pop(test_id, None)

    def __len__(self) -> int:
        return len(self._progress)
