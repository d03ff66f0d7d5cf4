"""ensure_topics' wait for the broker to serve what it made, on a stand-in for the admin client."""

import pytest

from servicekit.topics import _served


class Admin:
    """Answers describe_topics from a list of answers, the last one for ever after."""

    def __init__(self, *answers: list[dict]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def describe_topics(self, names: list[str]) -> list[dict]:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def topic(name: str, error_code: int = 0, leaders: tuple[int, ...] = (1,)) -> dict:
    return {"topic": name, "error_code": error_code, "partitions": [{"leader": leader} for leader in leaders]}


async def test_the_wait_ends_once_every_topic_has_a_leader_for_each_partition():
    admin = Admin([topic("a", error_code=3), topic("b", leaders=(1, -1))], [topic("a"), topic("b", leaders=(1, 1))])
    await _served(admin, ["a", "b"], timeout=5)
    assert admin.calls == 2


async def test_a_topic_never_served_fails_naming_it_and_only_it():
    admin = Admin([topic("a"), topic("b", error_code=3)])
    with pytest.raises(RuntimeError, match=r"the broker does not serve b after 0.2 s") as raised:
        await _served(admin, ["a", "b"], timeout=0.2)
    assert "a," not in str(raised.value)


async def test_a_topic_missing_from_the_answer_is_not_served():
    admin = Admin([topic("a")])
    with pytest.raises(RuntimeError, match="serve b "):
        await _served(admin, ["a", "b"], timeout=0.1)
