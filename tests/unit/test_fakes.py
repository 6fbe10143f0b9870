"""The network-edge fakes behave like the real services, through real HTTP."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import load_fixture
from tests.fakes.audio import duration_of, probe, voice_note
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI


@pytest.fixture(scope="module")
def evo() -> Iterator[FakeEvolution]:
    with FakeEvolution.running() as fake:
        yield fake


@pytest.fixture(scope="module")
def ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        yield fake


def client(ai: FakeOpenAI, key: str = "sk-test-0000") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=ai.url, api_key=key, max_retries=0)


# --- audio ---------------------------------------------------------------------------------------


def test_voice_note_is_ogg_opus_of_the_requested_length() -> None:
    data = voice_note(3)
    info = probe(data)
    assert data[:4] == b"OggS"
    assert info["format"]["format_name"] == "ogg"
    (stream,) = info["streams"]
    assert (stream["codec_name"], stream["channels"]) == ("opus", 1)
    assert duration_of(data) == pytest.approx(3, abs=0.1)
    assert voice_note(3) == data  # cached
    assert 5_000 < len(data) < 20_000  # ~24 kbit/s


# --- Evolution -----------------------------------------------------------------------------------


async def test_send_text_v2_and_v1(evo: FakeEvolution) -> None:
    async with httpx.AsyncClient(base_url=evo.url, headers={"apikey": "k1"}) as http:
        v2 = await http.post(
            "/message/sendText/inst", json=load_fixture("rest.sendText.v2.request.json")
        )
        v1 = await http.post(
            "/message/sendText/inst", json=load_fixture("rest.sendText.v1.request.json")
        )
        group = await http.post(
            "/message/sendText/inst", json={"number": "120363401234567890", "text": "oi"}
        )
    assert (v2.status_code, v1.status_code) == (201, 201)
    shape = load_fixture("rest.sendText.v2.response.json")
    assert v2.json().keys() == shape.keys()
    assert v2.json()["key"]["remoteJid"] == "5511988880001@s.whatsapp.net"
    assert v2.json()["key"]["id"].startswith("3EB0")
    assert v2.json()["key"]["id"] != v1.json()["key"]["id"]
    assert group.json()["key"]["remoteJid"] == "120363401234567890@g.us"
    first, second = evo.sent[-3:-1]
    assert (first.instance, first.number, first.apikey) == ("inst", "5511988880001", "k1")
    assert first.text == second.text == "Olá! Seu pedido #1234 foi enviado."
    assert first.quoted_id == second.quoted_id == "A5561E44C2A63682E4295B52F484C14E"


async def test_auth_instances_and_failure_injection(evo: FakeEvolution) -> None:
    body = {"number": "5511900000000", "text": "x"}
    async with httpx.AsyncClient(base_url=evo.url) as http:
        assert (await http.post("/message/sendText/a", json=body)).status_code == 401
        evo.valid_keys = {"good"}
        evo.instances = {"a"}
        try:
            bad = await http.post("/message/sendText/a", json=body, headers={"apikey": "bad"})
            missing = await http.post("/message/sendText/b", json=body, headers={"apikey": "good"})
        finally:
            evo.valid_keys, evo.instances = set(), set()
        assert bad.json()["response"]["message"] == "Unauthorized"
        assert missing.status_code == 404
        assert missing.json()["response"]["message"] == ['The "b" instance does not exist']

        evo.fail_next("sendText", 400, body=load_fixture("rest.error.400.not-on-whatsapp.json"))
        evo.fail_next("sendText", 500, times=2)
        statuses = [
            (await http.post("/message/sendText/a", json=body, headers={"apikey": "k"})).status_code
            for _ in range(4)
        ]
    assert statuses == [400, 500, 500, 201]
    assert [r.status for r in evo.requests_to("/message/sendText/a")][-4:] == statuses


async def test_get_base64_and_groups(evo: FakeEvolution) -> None:
    note = voice_note(1)
    evo.add_media("ABC123", note)
    async with httpx.AsyncClient(base_url=evo.url, headers={"apikey": "k"}) as http:
        media = await http.post(
            "/chat/getBase64FromMediaMessage/inst",
            json={"message": {"key": {"id": "ABC123"}}, "convertToMp4": False},
        )
        unknown = await http.post(
            "/chat/getBase64FromMediaMessage/inst", json={"message": {"key": {"id": "nope"}}}
        )
        no_query = await http.get("/group/fetchAllGroups/inst")
        lean = await http.get("/group/fetchAllGroups/inst", params={"getParticipants": "false"})
        one = await http.get(
            "/group/findGroupInfos/inst", params={"groupJid": "120363401234567890"}
        )
        none = await http.get("/group/findGroupInfos/inst", params={"groupJid": "1@g.us"})
    assert media.status_code == 201
    assert base64.b64decode(media.json()["base64"]) == note
    assert media.json()["fileName"] == "ABC123.oga"
    assert media.json()["size"]["fileLength"] == {"low": len(note), "high": 0, "unsigned": True}
    assert unknown.status_code == 400
    assert unknown.json()["response"]["message"] == ["Message not found"]
    assert evo.downloads[-1]["body"]["message"]["key"]["id"] == "nope"
    assert no_query.status_code == 400
    assert len(lean.json()) == 2
    assert "participants" not in lean.json()[0]
    assert one.json()["subject"] == "Equipe Vendas"
    assert len(one.json()["participants"]) == 3
    assert none.status_code == 400


async def test_delay(evo: FakeEvolution) -> None:
    evo.delay("fetchAllGroups", 0.3)
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=evo.url, headers={"apikey": "k"}) as http:
        await http.get("/group/fetchAllGroups/x", params={"getParticipants": "true"})
    evo.delay("fetchAllGroups", 0)
    assert time.monotonic() - start >= 0.3


# --- OpenAI --------------------------------------------------------------------------------------


async def test_transcription_through_the_sdk(ai: FakeOpenAI) -> None:
    note = voice_note(2)
    result = await client(ai).audio.transcriptions.create(
        model="whisper-1", file=("a.ogg", note), language="pt"
    )
    assert result.text == "Olá, isto é um teste de transcrição."
    last = ai.transcriptions[-1]
    assert (last.api_key, last.model, last.language, last.filename) == (
        "sk-test-0000",
        "whisper-1",
        "pt",
        "a.ogg",
    )
    assert last.size == len(note)
    assert last.data == note

    ai.transcript = lambda filename, data: f"{filename}:{len(data)}"
    try:
        verbose = await client(ai).audio.transcriptions.create(
            model="whisper-1", file=("b.ogg", note), response_format="verbose_json"
        )
    finally:
        ai.transcript = "Olá, isto é um teste de transcrição."
    assert verbose.text == f"b.ogg:{len(note)}"
    assert verbose.duration == pytest.approx(2, abs=0.1)  # type: ignore[attr-defined]


async def test_transcription_rejects_oga_and_big_files(ai: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        await client(ai).audio.transcriptions.create(model="whisper-1", file=("a.oga", b"OggS"))
    ai.max_upload_bytes = 10
    try:
        with pytest.raises(openai.APIStatusError) as error:
            await client(ai).audio.transcriptions.create(
                model="whisper-1", file=("a.ogg", b"x" * 11)
            )
    finally:
        ai.max_upload_bytes = 26_214_400
    assert error.value.status_code == 413


async def test_chat_completion_through_the_sdk(ai: FakeOpenAI) -> None:
    ai.completion = lambda messages: "resumo: " + messages[-1]["content"]
    try:
        result = await client(ai).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "x" * 400}, {"role": "user", "content": "oi"}],
            max_tokens=50,
        )
    finally:
        ai.completion = "Resumo de teste."
    assert result.choices[0].message.content == "resumo: oi"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (101, 3)
    assert result.usage.total_tokens == 104
    assert ai.completions[-1].max_tokens == 50
    assert ai.completions[-1].messages[-1] == {"role": "user", "content": "oi"}


async def test_invalid_key_and_rate_limit(ai: FakeOpenAI) -> None:
    ai.invalid_keys = {"sk-revoked-abcd"}
    with pytest.raises(openai.AuthenticationError) as denied:
        await client(ai, "sk-revoked-abcd").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert denied.value.code == "invalid_api_key"
    assert "sk-...abcd" in denied.value.message

    ai.fail_next("/audio/transcriptions", 429, times=2, retry_after=7)
    ai.fail_next("/chat/", 500)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as limited:
            await client(ai).audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"x"))
        assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError):
        await client(ai).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    ok = await client(ai).audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"x"))
    assert ok.text
    statuses = [r.status for r in ai.requests][-4:]
    assert statuses == [429, 429, 500, 200]


async def test_block_and_release(ai: FakeOpenAI) -> None:
    gate = ai.block("/chat/completions")
    call = asyncio.create_task(
        client(ai).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    )
    assert await asyncio.to_thread(gate.wait_arrived, 5)
    other = await client(ai).audio.transcriptions.create(model="whisper-1", file=("a.ogg", b"x"))
    assert other.text  # the server is not blocked
    assert not call.done()
    assert gate.waiting == 1
    gate.release()
    result = await asyncio.wait_for(call, 5)
    assert result.choices[0].message.content == "Resumo de teste."


async def test_evolution_stores_its_sends_for_find_messages_and_echoes_them(
    evo: FakeEvolution,
) -> None:
    received: list[dict[str, object]] = []

    async def webhook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    from tests.conftest import serve_in_thread

    with serve_in_thread(Starlette(routes=[Route("/hook", webhook, methods=["POST"])])) as base:
        evo.echo_to(f"{base}/hook", {"X-Webhook-Secret": "s"}, times=2)
        try:
            async with httpx.AsyncClient(base_url=evo.url, headers={"apikey": "k1"}) as http:
                sent = await http.post(
                    "/message/sendText/echo-inst",
                    json={"number": "120363400000000009@g.us", "text": "eco"},
                )
                for _ in range(100):
                    if len(evo.echoes) == 2:
                        break
                    await asyncio.sleep(0.02)
                found = await http.post(
                    "/chat/findMessages/echo-inst",
                    json={"where": {"key": {"remoteJid": "120363400000000009@g.us"}}},
                )
        finally:
            evo.echo_to(None)

    assert sent.status_code == 201
    assert evo.echoes == [200, 200]
    fixture = load_fixture("send.message.json")
    assert set(received[0]) == set(fixture)
    assert received[0]["event"] == "send.message"
    assert received[0]["instance"] == "echo-inst"
    assert received[0]["data"] == sent.json()  # the send's answer, as Evolution echoes it
    [record] = found.json()["messages"]["records"]
    assert record["key"] == sent.json()["key"]


async def test_evolution_can_fail_after_sending_and_lose_requests(evo: FakeEvolution) -> None:
    async with httpx.AsyncClient(base_url=evo.url, headers={"apikey": "k1"}) as http:
        before = len(evo.sent)
        evo.fail_after_sending(503)
        failed = await http.post("/message/sendText/x", json={"number": "5511", "text": "a"})
        gate = evo.lose_next_send()
        lost = asyncio.create_task(
            http.post("/message/sendText/x", json={"number": "5511", "text": "b"})
        )
        assert await asyncio.to_thread(gate.wait_arrived, 5)
        gate.release()
        lost_response = await lost

    assert failed.status_code == 503
    assert lost_response.status_code == 502
    assert [item.text for item in evo.sent[before:]] == ["a"]  # acted on the first only


async def test_the_fake_throttles_per_key_the_way_openai_does() -> None:
    with FakeOpenAI.running() as throttled:
        throttled.throttle(requests_per_second=2, burst=2)
        messages: list[dict[str, str]] = [{"role": "user", "content": "x"}]
        one = client(throttled, "sk-one").chat.completions
        first = await one.with_raw_response.create(model="m", messages=messages, max_tokens=5)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-reset-requests"].endswith("ms")
        await one.create(model="m", messages=messages, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as refused:
            await one.create(model="m", messages=messages, max_tokens=5)
        headers = refused.value.response.headers
        assert headers["retry-after"] == "1"
        assert 0 < int(headers["retry-after-ms"]) <= 500
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.value.code == "rate_limit_exceeded"
        # Another key has limits of its own.
        await client(throttled, "sk-two").chat.completions.create(
            model="m", messages=messages, max_tokens=5
        )
        assert throttled.throttled == (3, 1)

        throttled.out_of_credit_keys = {"sk-broke"}
        with pytest.raises(openai.RateLimitError) as broke:
            await client(throttled, "sk-broke").chat.completions.create(
                model="m", messages=messages, max_tokens=5
            )
        assert broke.value.code == "insufficient_quota"
