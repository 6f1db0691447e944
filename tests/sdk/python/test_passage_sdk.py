"""passage-identity (Python SDK 3.x) against a running Keyhaven; run by ../run.sh."""

import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid

import jwt  # PyJWT, the SDK's own JWT library
import pytest
from passageidentity import (
    CreateUserArgs,
    MagicLinkChannel,
    MagicLinkType,
    MagicLinkWithEmailArgs,
    MagicLinkWithUserArgs,
    Passage,
    PassageError,
    UpdateUserArgs,
    UserStatus,
)
from passageidentity.openapi_client.configuration import Configuration

BASE = os.environ["BASE"]
APP_ID = os.environ["APP_ID"]
API_KEY = os.environ["API_KEY"]
OTHER_APP_ID = os.environ["OTHER_APP_ID"]
OTHER_API_KEY = os.environ["OTHER_API_KEY"]
OUTBOX = os.path.join(os.environ["DATA_DIR"], "outbox.log")

# Override 1: the generated Manage API client defaults to https://api.passage.id/v1.
Configuration.set_default(Configuration(host=f"{BASE}/v1"))


def passage(app_id: str = APP_ID, api_key: str = API_KEY) -> Passage:
    psg = Passage(app_id, api_key)
    # Override 2: Auth.jwks is a PyJWKClient built for
    # https://auth.passage.id/v1/apps/{app_id}/.well-known/jwks.json; point its URL here.
    psg.auth.jwks.uri = f"{BASE}/v1/apps/{app_id}/.well-known/jwks.json"
    return psg


def email() -> str:
    return f"sdk-py-{uuid.uuid4().hex[:12]}@example.test"


def post(path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{BASE}/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def otp_code(to: str) -> str:
    """The last one-time code sent to `to`, from the server's outbox.log."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if os.path.exists(OUTBOX):
            with open(OUTBOX, encoding="utf-8") as f:
                lines = [l.split("\t") for l in f.read().splitlines()]
            codes = [re.search(r"\b\d{6}\b", l[4]) for l in lines if len(l) >= 5 and l[2] == to]
            codes = [c.group() for c in codes if c]
            if codes:
                return codes[-1]
        time.sleep(0.1)
    raise AssertionError(f"no code for {to} in {OUTBOX}")


def login(app_id: str, identifier: str, flow: str = "login") -> dict:
    """An auth_result (auth and refresh token) through {flow}/otp + otp/activate (raw HTTP)."""
    otp_id = post(f"/apps/{app_id}/{flow}/otp", {"identifier": identifier})["otp_id"]
    return post(f"/apps/{app_id}/otp/activate", {"otp": otp_code(identifier), "otp_id": otp_id})["auth_result"]


def test_user_lifecycle():
    psg = passage()
    address = email()
    user = psg.user.create(CreateUserArgs(email=address))
    assert user.id and user.email == address
    assert user.status == UserStatus.ACTIVE

    got = psg.user.get(user.id)
    assert (got.id, got.email) == (user.id, address)

    new_address = email()
    updated = psg.user.update(user.id, UpdateUserArgs(email=new_address, phone="+14155552671"))
    assert (updated.id, updated.email, updated.phone) == (user.id, new_address, "+14155552671")
    assert psg.user.get(user.id).email == new_address

    # The app defines no user_metadata fields, so an unknown field is refused.
    with pytest.raises(PassageError) as err:
        psg.user.update(user.id, UpdateUserArgs(user_metadata={"plan": "pro"}))
    assert err.value.status_code == 400

    assert psg.user.list_devices(user.id) == []

    assert psg.user.deactivate(user.id).status == UserStatus.INACTIVE
    assert psg.user.get(user.id).status == UserStatus.INACTIVE
    assert psg.user.activate(user.id).status == UserStatus.ACTIVE
    assert psg.user.get(user.id).status == UserStatus.ACTIVE

    psg.user.delete(user.id)
    with pytest.raises(PassageError) as err:
        psg.user.get(user.id)
    assert err.value.status_code == 404
    assert err.value.error_code == "user_not_found"


def test_get_by_identifier():
    psg = passage()
    address = email()
    user = psg.user.create(CreateUserArgs(email=address))
    assert psg.user.get_by_identifier(address.upper()).id == user.id


def test_create_magic_link():
    psg = passage()
    address = email()
    user = psg.user.create(CreateUserArgs(email=address))

    link = psg.auth.create_magic_link(
        MagicLinkWithUserArgs(
            user_id=user.id, channel=MagicLinkChannel.EMAIL, link_type=MagicLinkType.LOGIN, send=False
        )
    )
    assert link.id and link.secret
    assert link.url.startswith("http://localhost:3000") and link.secret in link.url
    assert (link.app_id, link.user_id, link.identifier) == (APP_ID, user.id, address)
    assert link.type == MagicLinkType.LOGIN
    assert link.activated is False
    assert link.ttl > 0

    by_email = psg.auth.create_magic_link(
        MagicLinkWithEmailArgs(email=address, link_type=MagicLinkType.LOGIN, send=False)
    )
    assert (by_email.user_id, by_email.identifier) == (user.id, address)
    assert by_email.id != link.id and by_email.secret != link.secret


def test_validate_jwt():
    psg = passage()
    address = email()
    user = psg.user.create(CreateUserArgs(email=address))
    session = login(APP_ID, address)
    token = session["auth_token"]

    assert psg.auth.validate_jwt(token) == user.id

    head, payload, signature = token.split(".")
    flipped = "A" if signature[10] != "A" else "B"
    tampered = f"{head}.{payload}.{signature[:10]}{flipped}{signature[11:]}"
    with pytest.raises(jwt.InvalidSignatureError):
        psg.auth.validate_jwt(tampered)

    other = login(OTHER_APP_ID, email(), flow="register")["auth_token"]
    assert passage(OTHER_APP_ID, OTHER_API_KEY).auth.validate_jwt(other)
    with pytest.raises(jwt.PyJWTError):
        psg.auth.validate_jwt(other)


def test_revoke_refresh_tokens():
    psg = passage()
    address = email()
    user = psg.user.create(CreateUserArgs(email=address))
    refresh_token = login(APP_ID, address)["refresh_token"]
    refresh_token = post(f"/apps/{APP_ID}/tokens", {"refresh_token": refresh_token})["auth_result"]["refresh_token"]

    psg.user.revoke_refresh_tokens(user.id)
    with pytest.raises(urllib.error.HTTPError) as err:
        post(f"/apps/{APP_ID}/tokens", {"refresh_token": refresh_token})
    assert err.value.code == 401
