"""EvolutionClient's reads (media, groups) against the fake Evolution API over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import pytest

from intellizap.evolution.client import EvolutionClient, GroupMetadata, MediaFile
from intellizap.evolution.errors import BadRequest
from tests.conftest import assert_no_secret, load_fixture
from tests.fakes.evolution import FakeEvolution

GLOBAL_KEY = "evo-global-key-0123456789abcdef"
TENANT_TOKEN = "evo-tenant-token-fedcba9876543210"
INSTANCE = "loja"
GROUP_JID = "120363401234567890@g.us"


@pytest.fixture
def evo() -> Iterator[FakeEvolution]:
    with FakeEvolution.running() as fake:
        yield fake


@pytest.fixture
async def client(evo: FakeEvolution) -> AsyncIterator[EvolutionClient]:
    evolution = EvolutionClient(evo.url, api_key=GLOBAL_KEY, backoff=0.01, timeout=10.0)
    yield evolution
    await evolution.aclose()


# --- media ---------------------------------------------------------------------------------------


async def test_get_media_base64_sends_key_and_message(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    data = b"OggS\x00\x02" + bytes(range(256)) * 4
    evo.add_media("D4C3B2A1F0E9D8C7B6A5F4E3D2C1B0A9", data)
    key = {"remoteJid": GROUP_JID, "fromMe": False, "id": "D4C3B2A1F0E9D8C7B6A5F4E3D2C1B0A9"}
    message = {"audioMessage": {"mimetype": "audio/ogg; codecs=opus", "ptt": True, "seconds": 3}}

    media = await client.get_media_base64(INSTANCE, key=key, message=message, token=TENANT_TOKEN)

    (download,) = evo.downloads
    assert download["body"] == {"message": {"key": key, "message": message}, "convertToMp4": False}
    assert download["instance"] == INSTANCE
    assert download["apikey"] == TENANT_TOKEN
    # The documented minimal request is contained in what is sent.
    fixture = load_fixture("rest.getBase64.v2.request.json")
    assert set(download["body"]) == set(fixture)
    assert download["body"]["convertToMp4"] is fixture["convertToMp4"]
    assert media == MediaFile(
        data_base64=base64.b64encode(data).decode(),
        mimetype="audio/ogg; codecs=opus",
        file_name="D4C3B2A1F0E9D8C7B6A5F4E3D2C1B0A9.oga",
    )
    assert base64.b64decode(media.data_base64) == data


async def test_get_media_base64_of_unknown_media_is_bad_request(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.get_media_base64(
            INSTANCE, key={"id": "NOPE"}, message={"audioMessage": {}}, token=TENANT_TOKEN
        )

    assert "Message not found" in str(caught.value)
    assert len(evo.downloads) == 1
    assert_no_secret(caught.value, TENANT_TOKEN, GLOBAL_KEY)


async def test_get_media_base64_without_base64_in_the_answer_is_bad_request(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_next("/chat/getBase64FromMediaMessage/", 201, body={"mediaType": "audioMessage"})

    with pytest.raises(BadRequest, match="no media"):
        await client.get_media_base64(INSTANCE, key={"id": "X"}, message={})


# --- groups --------------------------------------------------------------------------------------


async def test_fetch_all_groups_without_participants(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    groups = load_fixture("rest.fetchAllGroups.response.json")
    evo.groups[INSTANCE] = [
        *groups,
        {"id": "120363400000000001@g.us", "subject": ""},
        {"id": "5511988880001@s.whatsapp.net", "subject": "not a group"},
        {"subject": "no id"},
    ]

    result = await client.fetch_all_groups(INSTANCE, token=TENANT_TOKEN)

    assert result == [
        GroupMetadata(jid="120363401234567890@g.us", subject="Equipe Vendas"),
        GroupMetadata(jid="120363409876543210@g.us", subject="Clientes VIP"),
        GroupMetadata(jid="120363400000000001@g.us", subject=None),
    ]
    (call,) = evo.group_calls
    assert call["path"] == f"/group/fetchAllGroups/{INSTANCE}"
    assert call["query"] == {"getParticipants": "false"}
    assert call["apikey"] == TENANT_TOKEN


async def test_fetch_all_groups_skips_items_that_are_not_groups(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_next(
        "/group/fetchAllGroups/",
        200,
        body=["garbage", 42, None, {"id": 7}, {"id": GROUP_JID, "subject": "Equipe Vendas"}],
    )

    result = await client.fetch_all_groups(INSTANCE)

    assert result == [GroupMetadata(jid=GROUP_JID, subject="Equipe Vendas")]
    (request,) = evo.requests_to("/group/fetchAllGroups/")
    assert request.query == {"getParticipants": "false"}


async def test_fetch_all_groups_with_the_default_groups(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    result = await client.fetch_all_groups(INSTANCE)

    assert [(g.jid, g.subject) for g in result] == [
        (group["id"], group["subject"])
        for group in load_fixture("rest.fetchAllGroups.response.json")
    ]


async def test_fetch_all_groups_that_is_not_a_list_is_bad_request(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_next("/group/fetchAllGroups/", 200, body={"unexpected": True})

    with pytest.raises(BadRequest, match="did not return a list"):
        await client.fetch_all_groups(INSTANCE)


async def test_find_group_info(evo: FakeEvolution, client: EvolutionClient) -> None:
    group = await client.find_group_info(INSTANCE, "120363409876543210@g.us")

    assert group == GroupMetadata(jid="120363409876543210@g.us", subject="Clientes VIP")
    (call,) = evo.group_calls
    assert call["path"] == f"/group/findGroupInfos/{INSTANCE}"
    assert call["query"] == {"groupJid": "120363409876543210@g.us"}
    assert call["apikey"] == GLOBAL_KEY


async def test_find_group_info_of_an_unknown_group_is_bad_request(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    with pytest.raises(BadRequest, match="item-not-found"):
        await client.find_group_info(INSTANCE, "120363400000000099@g.us")
