"""The revocation store behind every authenticated request, in memory and on Redis."""

from __future__ import annotations

import uuid

import pytest
from redis import Redis

from app.services.token_store import MemoryTokenStore, RedisTokenStore


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest):
    if request.param == "memory":
        return MemoryTokenStore()
    return RedisTokenStore(Redis.from_url(request.getfixturevalue("redis_url")))


def test_one_call_answers_for_the_token_and_its_family(store):
    jti, family = uuid.uuid4().hex, uuid.uuid4().hex
    assert not store.is_token_or_family_revoked(jti, family)
    assert not store.is_token_or_family_revoked(jti, None)
    store.revoke_family(family, 60)
    assert store.is_token_or_family_revoked(jti, family)
    assert not store.is_token_or_family_revoked(jti, None)
    other = uuid.uuid4().hex
    store.revoke(other, 60)
    assert store.is_token_or_family_revoked(other, None)
    assert store.is_token_or_family_revoked(other, uuid.uuid4().hex)


def test_the_redis_check_is_a_single_round_trip(redis_url):
    client = Redis.from_url(redis_url)
    sent: list[tuple] = []
    original = client.execute_command

    def counting(*args, **options):
        sent.append(args)
        return original(*args, **options)

    client.execute_command = counting
    RedisTokenStore(client).is_token_or_family_revoked("a-jti", "a-family")
    assert [command[0] for command in sent] == ["EXISTS"]
    assert len(sent[0]) == 3
