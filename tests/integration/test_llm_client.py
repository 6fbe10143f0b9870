"""The LLM client's error translation, through the real OpenAI SDK against the fake OpenAI API
over real HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from intellizap.llm import (
    ApiKey,
    InvalidApiKey,
    KeyOwner,
    Llm,
    LlmRejected,
    LlmUnavailable,
    RateLimited,
    choose_key,
)
from tests.conftest import assert_no_secret, free_port
from tests.fakes.openai import FakeOpenAI

OWN_KEY = "sk-tenant-own-key-0123456789abcdef"
PLATFORM_KEY = "sk-platform-key-fedcba9876543210"


@pytest.fixture
def ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.transcript = "  bom dia a todos  "
        fake.completion = "Resumo."
        yield fake


@pytest.fixture
async def llm(ai: FakeOpenAI) -> AsyncIterator[Llm]:
    client = Llm(ai.url, timeout=10.0)
    yield client
    await client.aclose()


MESSAGES = [{"role": "user", "content": "resuma"}]


async def test_llm_calls_succeed_with_the_chosen_key(ai: FakeOpenAI, llm: Llm) -> None:
    key = choose_key(OWN_KEY, None)

    text = await llm.transcribe(key, audio=b"OggS-fake", filename="audio.ogg", model="whisper-1")
    completion = await llm.complete(key, model="gpt-test", messages=MESSAGES, max_tokens=50)

    assert text == "bom dia a todos"
    assert completion.text == "Resumo."
    assert completion.model == "gpt-test"
    assert completion.input_tokens > 0
    assert completion.output_tokens > 0
    assert [t.api_key for t in ai.transcriptions] == [OWN_KEY]
    assert [c.api_key for c in ai.completions] == [OWN_KEY]


@pytest.mark.parametrize("owner", [KeyOwner.OWN, KeyOwner.PLATFORM])
async def test_llm_invalid_key(ai: FakeOpenAI, llm: Llm, owner: KeyOwner) -> None:
    key = (
        choose_key(OWN_KEY, None)
        if owner is KeyOwner.OWN
        else choose_key(None, SecretStr(PLATFORM_KEY))
    )
    ai.invalid_keys = {key.secret}

    with pytest.raises(InvalidApiKey) as on_transcribe:
        await llm.transcribe(key, audio=b"x", filename="a.ogg", model="whisper-1")
    with pytest.raises(InvalidApiKey) as on_complete:
        await llm.complete(key, model="gpt-test", messages=MESSAGES, max_tokens=10)

    for caught in (on_transcribe, on_complete):
        assert caught.value.transient is False
        assert "401" in str(caught.value)
        assert_no_secret(caught.value, key.secret, key.secret[-4:] + ".")
    assert len(ai.requests) == 2  # not retried by the SDK


async def test_llm_rate_limited_beyond_the_wait_is_handed_back_with_retry_after(
    ai: FakeOpenAI,
) -> None:
    """A 429 asking for longer than the call may wait (``max_wait``) gives the job back."""
    llm = Llm(ai.url, timeout=10.0, max_wait=1.0)
    key = choose_key(OWN_KEY, None)
    ai.fail_next("/chat/completions", 429, retry_after=7)
    try:
        with pytest.raises(RateLimited) as caught:
            await llm.complete(key, model="gpt-test", messages=MESSAGES, max_tokens=10)
    finally:
        await llm.aclose()

    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 7
    assert caught.value.transient is True
    assert len(ai.requests) == 1
    assert_no_secret(caught.value, OWN_KEY)


async def test_llm_rate_limited_without_retry_after_is_sent_again(ai: FakeOpenAI, llm: Llm) -> None:
    """A 429 within the call's wait is waited out and the request sent again."""
    ai.fail_next("/audio/", 429)

    text = await llm.transcribe(
        choose_key(OWN_KEY, None), audio=b"x", filename="a.ogg", model="whisper-1"
    )

    assert text
    assert len(ai.requests) == 2


@pytest.mark.parametrize("status", [500, 503])
async def test_llm_5xx_is_unavailable(ai: FakeOpenAI, llm: Llm, status: int) -> None:
    ai.fail_next("/audio/", status)

    with pytest.raises(LlmUnavailable) as caught:
        await llm.transcribe(
            choose_key(OWN_KEY, None), audio=b"x", filename="a.ogg", model="whisper-1"
        )

    assert caught.value.transient is True
    assert str(status) in str(caught.value)
    assert len(ai.requests) == 1


async def test_llm_unreachable_is_unavailable() -> None:
    llm = Llm(f"http://127.0.0.1:{free_port()}/v1", timeout=5.0)
    try:
        with pytest.raises(LlmUnavailable) as caught:
            await llm.complete(
                choose_key(OWN_KEY, None), model="gpt-test", messages=MESSAGES, max_tokens=10
            )
    finally:
        await llm.aclose()

    assert caught.value.transient is True
    assert_no_secret(caught.value, OWN_KEY)


async def test_llm_oga_file_name_is_rejected(ai: FakeOpenAI, llm: Llm) -> None:
    key = choose_key(OWN_KEY, None)

    with pytest.raises(LlmRejected) as caught:
        await llm.transcribe(key, audio=b"OggS", filename="voice.oga", model="whisper-1")

    assert caught.value.transient is False
    assert "400" in str(caught.value)
    assert "Invalid file format" in str(caught.value)
    assert [t.filename for t in ai.transcriptions] == ["voice.oga"]
    assert_no_secret(caught.value, OWN_KEY)


async def test_every_slot_keeps_its_connection_to_the_provider(ai: FakeOpenAI) -> None:
    """A worker's slots all call the platform key at once. With more of them than the SDK's
    default pool keeps (100), each wave of calls would open (TLS, in production) and close the
    connections beyond it; the client keeps one per slot."""
    slots = 120
    ai.latency = 0.3  # the calls of a wave overlap, each on a connection of its own
    llm = Llm(ai.url, timeout=10.0, connections=slots)
    key = choose_key(None, SecretStr(PLATFORM_KEY))
    try:
        for _wave in range(2):
            await asyncio.gather(
                *(
                    llm.complete(key, model="gpt-test", messages=MESSAGES, max_tokens=10)
                    for _ in range(slots)
                )
            )
    finally:
        await llm.aclose()

    calls = ai.requests_to("/chat/completions")
    assert len(calls) == 2 * slots
    assert len({call.peer for call in calls}) == slots  # the second wave reused the first's


def connections_to(url: str) -> int:
    """This process's established TCP connections to the server at ``url`` (Linux)."""
    port = f"{urlsplit(url).port:04X}"
    established = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                _, _local, remote, state, *_ = row.split()
                established += remote.endswith(f":{port}") and state == "01"
    return established


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="counts sockets through /proc")
async def test_a_client_dropped_beyond_the_limit_closes_its_connections(ai: FakeOpenAI) -> None:
    """Each key has its own client and connections (up to a slot each); one dropped to make room
    for another key's closes them, once the calls still using it have ended."""
    llm = Llm(ai.url, timeout=10.0, max_clients=2, connections=8)
    keys = [choose_key(f"sk-tenant-{n}-0123456789abcdef", None) for n in range(3)]

    async def calls(key: ApiKey, n: int) -> None:
        await asyncio.gather(
            *(
                llm.complete(key, model="gpt-test", messages=MESSAGES, max_tokens=10)
                for _ in range(n)
            )
        )

    try:
        ai.latency = 0.2  # the calls of a key overlap, each on a connection of its own
        await calls(keys[0], 4)
        first = connections_to(ai.url)
        assert first >= 2
        # A call of the first key is still running when a third key drops its client.
        ai.latency = 1.0
        running = asyncio.create_task(calls(keys[0], 1))
        await asyncio.sleep(0.3)  # its request arrived: it is answered in 1 s, the next at once
        ai.latency = 0.0
        await calls(keys[1], 1)
        await calls(keys[2], 1)  # the first key's client is the least recently used
        assert connections_to(ai.url) == first + 1 + 1  # dropped, but one of its calls runs
        await running  # and ends as usual
        assert connections_to(ai.url) == 2
    finally:
        await llm.aclose()
    assert connections_to(ai.url) == 0
    assert len(ai.requests_to("/chat/completions")) == 7
