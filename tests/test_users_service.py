"""The user and auth services, called directly: no HTTP involved."""

from __future__ import annotations

import uuid

import jwt
import pytest

from app.errors import ConflictError, ForbiddenError, UnauthorizedError, ValidationError
from app.extensions import db
from app.models import User
from app.repositories import DuplicateError
from app.repositories import users as users_repository
from app.services import auth, tokens, users
from app.state import settings
from tests.conftest import STRONG_PASSWORD, unique_email
from tests.sql_statements import statements_sent, verbs

pytestmark = pytest.mark.usefixtures("app_context")


def test_register_normalises_the_email_and_hashes_the_password():
    user = users.register("  Mixed.Case@Example.COM ", STRONG_PASSWORD, "  Ann  ")
    assert user.email == "mixed.case@example.com"
    assert user.name == "Ann"
    assert user.password_hash.startswith("$argon2id$")
    assert STRONG_PASSWORD not in user.password_hash
    assert (user.role, user.is_active, user.email_verified) == ("user", True, False)
    assert user.created_at.tzinfo is not None


def test_register_rejects_duplicate_email_case_insensitively():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    with pytest.raises(ConflictError):
        users.register(f"  {email.upper()}", STRONG_PASSWORD)


def test_register_applies_the_password_policy():
    with pytest.raises(ValidationError) as caught:
        users.register(unique_email(), "password")
    assert "password" in caught.value.errors


def test_repository_unique_index_refuses_a_duplicate_that_skipped_the_check():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    with pytest.raises(DuplicateError):
        users_repository.add(User(email=email, password_hash="x"))


def test_repository_finds_by_email_and_id():
    user = users.register(unique_email(), STRONG_PASSWORD)
    assert users_repository.find_by_email(user.email).id == user.id
    assert users_repository.find_by_id(user.id).email == user.email
    assert users_repository.find_by_email("nobody@example.com") is None
    assert users_repository.find_by_id(uuid.uuid4()) is None


def test_repository_find_by_id_returns_the_held_user_with_its_pending_change():
    user = users.register(unique_email(), STRONG_PASSWORD)
    held = users_repository.find_by_id(user.id)
    held.name = "Pending"
    found = users_repository.find_by_id(user.id)
    assert found is held
    assert found.name == "Pending"
    db.session.rollback()
    assert users_repository.find_by_id(user.id).name is None


def test_login_returns_a_typed_hs256_token_pair():
    email = unique_email()
    user = users.register(email, STRONG_PASSWORD)
    pair = auth.login(email.upper(), STRONG_PASSWORD)
    assert pair.token_type == "Bearer" and pair.expires_in == 900
    header = jwt.get_unverified_header(pair.access_token)
    assert header["alg"] == "HS256"
    access = jwt.decode(pair.access_token, settings().jwt_secret, algorithms=["HS256"])
    refresh = jwt.decode(pair.refresh_token, settings().jwt_secret, algorithms=["HS256"])
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["sub"] == refresh["sub"] == str(user.id)
    assert {"sub", "jti", "iat", "exp", "type"} <= access.keys()
    assert access["jti"] != refresh["jti"]


def test_login_gives_the_same_error_for_unknown_email_and_wrong_password():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    with pytest.raises(UnauthorizedError) as unknown:
        auth.login(unique_email(), STRONG_PASSWORD)
    with pytest.raises(UnauthorizedError) as wrong:
        auth.login(email, "not the password at all")
    assert unknown.value.message == wrong.value.message


def test_login_of_unknown_email_verifies_a_dummy_hash(monkeypatch):
    calls = []
    real_verify = auth.passwords.verify_password
    monkeypatch.setattr(
        auth.passwords, "verify_password", lambda h, p: calls.append(h) or real_verify(h, p)
    )
    with pytest.raises(UnauthorizedError):
        auth.login(unique_email(), STRONG_PASSWORD)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_disabled_account_is_forbidden_after_a_correct_password():
    email = unique_email()
    user = users.register(email, STRONG_PASSWORD)
    user.is_active = False
    users_repository.commit()
    with pytest.raises(ForbiddenError):
        auth.login(email, STRONG_PASSWORD)
    with pytest.raises(UnauthorizedError):
        auth.login(email, "wrong password here")


def test_login_rehashes_a_hash_with_old_parameters():
    from argon2 import PasswordHasher, Type

    email = unique_email()
    user = users.register(email, STRONG_PASSWORD)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192, type=Type.ID).hash(
        STRONG_PASSWORD
    )
    users_repository.commit()
    auth.login(email, STRONG_PASSWORD)
    db.session.remove()  # read what the database holds, not the session's copy
    assert "m=19456,t=2,p=1" in users_repository.find_by_email(email).password_hash


def test_registration_is_one_insert_and_the_new_user_needs_no_reload(monkeypatch):
    # Without Redis the welcome job would run inline, with statements of its own.
    queued = []
    monkeypatch.setattr(users.email_service, "queue_welcome", lambda user: queued.append(user.id))
    db.session.remove()
    with statements_sent() as sent:
        user = users.register(unique_email(), STRONG_PASSWORD, "Ann")
        # Everything the response and the welcome job read, without a SELECT.
        assert (user.id, user.email, user.role, user.is_active) is not None
        assert user.created_at.tzinfo is not None and user.name == "Ann"
    # No look-up first, no BEGIN or COMMIT round trip: one autocommitted INSERT.
    assert verbs(sent) == [("INSERT", True)]
    assert queued == [user.id]


def test_login_reads_the_user_with_one_statement_outside_a_transaction():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    db.session.remove()
    with statements_sent() as sent:
        auth.login(email, STRONG_PASSWORD)
    assert verbs(sent) == [("SELECT", True)]


def test_a_session_with_work_under_way_keeps_its_transaction_for_registration(monkeypatch):
    monkeypatch.setattr(users.email_service, "queue_welcome", lambda user: None)
    other = users.register(unique_email(), STRONG_PASSWORD)
    other.name = "Changed"  # pending: the next write must commit both together
    with statements_sent() as sent:
        users.register(unique_email(), STRONG_PASSWORD)
    assert sent and not any(statement.in_autocommit for statement in sent)
    db.session.remove()
    assert users_repository.find_by_id(other.id).name == "Changed"


def test_refresh_token_is_refused_where_an_access_token_is_expected():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    pair = auth.login(email, STRONG_PASSWORD)
    assert auth.authenticate(pair.access_token).email == email
    with pytest.raises(UnauthorizedError):
        auth.authenticate(pair.refresh_token)
    with pytest.raises(UnauthorizedError):
        tokens.decode(pair.access_token, tokens.REFRESH)


def test_revoked_access_token_is_refused():
    email = unique_email()
    users.register(email, STRONG_PASSWORD)
    pair = auth.login(email, STRONG_PASSWORD)
    tokens.revoke(tokens.decode(pair.access_token, tokens.ACCESS))
    with pytest.raises(UnauthorizedError):
        auth.authenticate(pair.access_token)
