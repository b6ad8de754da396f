"""OAuth 2.0 through intuit-oauth's AuthClient against the emulator."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from infra.qbo_emulator import QboEmulator
from tests.qbo_emulator.conftest import Api, FakeClock, reference_json

REDIRECT = "https://app.example.com/qbo/callback"


def _client(emu: QboEmulator, **kwargs: str) -> AuthClient:
    return AuthClient(
        kwargs.get("client_id", emu.client_id), kwargs.get("secret", emu.client_secret), REDIRECT, emu.discovery_url
    )


def _consent(emu: QboEmulator, client: AuthClient, **extra: str) -> dict[str, str]:
    url = client.get_authorization_url([Scopes.ACCOUNTING])
    if extra:
        url += "&" + "&".join(f"{k}={v}" for k, v in extra.items())
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _connect(emu: QboEmulator) -> tuple[AuthClient, str]:
    client = _client(emu)
    params = _consent(emu, client)
    client.get_bearer_token(params["code"], realm_id=params["realmId"])
    return client, params["realmId"]


def _invalid_grant(exc: pytest.ExceptionInfo[AuthClientError]) -> None:
    assert exc.value.status_code == 400
    assert json.loads(exc.value.content)["error"] == "invalid_grant"


def test_discovery_document_points_at_the_emulator(emu: QboEmulator) -> None:
    doc = requests.get(emu.discovery_url, timeout=10).json()
    expected_keys = set(reference_json("oauth/dotnet/discovery.json"))
    assert expected_keys <= set(doc)
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint", "jwks_uri"):
        assert doc[key].startswith(emu.base_url)
    client = _client(emu)
    assert client.token_endpoint == f"{emu.base_url}/token"


def test_authorization_code_flow_issues_tokens(emu: QboEmulator) -> None:
    client = _client(emu)
    params = _consent(emu, client)
    assert params["state"] == client.state_token
    assert params["realmId"] in emu.realms  # a company was created on consent
    client.get_bearer_token(params["code"], realm_id=params["realmId"])
    assert client.access_token and client.refresh_token
    assert client.expires_in == 3600
    assert client.x_refresh_token_expires_in == 100 * 86400
    assert emu.token_requests[-1]["grant_type"] == "authorization_code"
    assert emu.token_requests[-1]["outcome"] == "ok"
    # the response carries the keys of Intuit's sample token response (id_token only with openid scope)
    sample = set(reference_json("oauth/tokenResponse.json")) - {"id_token"}
    raw = requests.post(
        client.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": client.refresh_token},
        auth=(emu.client_id, emu.client_secret),
        timeout=10,
    ).json()
    assert set(raw) == sample
    # the token works against the API
    api = Api(emu, params["realmId"], raw["access_token"])
    assert api.get("companyinfo/1").status_code == 200


def test_code_is_single_use_and_redirect_must_match(emu: QboEmulator) -> None:
    client = _client(emu)
    params = _consent(emu, client)
    client.get_bearer_token(params["code"])
    with pytest.raises(AuthClientError) as exc:
        client.get_bearer_token(params["code"])
    _invalid_grant(exc)
    other = AuthClient(emu.client_id, emu.client_secret, "https://elsewhere.example.com/cb", emu.discovery_url)
    params = _consent(emu, client)
    with pytest.raises(AuthClientError) as exc:
        other.get_bearer_token(params["code"])
    _invalid_grant(exc)


def test_code_expires_after_ten_minutes(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    client = _client(clocked_emu)
    params = _consent(clocked_emu, client)
    clock.advance(601)
    with pytest.raises(AuthClientError) as exc:
        client.get_bearer_token(params["code"])
    _invalid_grant(exc)


def test_authorize_can_choose_the_realm_and_rejects_unknown_clients(emu: QboEmulator) -> None:
    realm = emu.add_company("123146096291789")
    emu.add_company()
    params = _consent(emu, _client(emu), realmId=realm)
    assert params["realmId"] == realm
    bad = _client(emu, client_id="someone-else")
    response = requests.get(bad.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False, timeout=10)
    assert response.status_code == 400
    wrong_secret = _client(emu, secret="nope")
    with pytest.raises(AuthClientError) as exc:
        wrong_secret.get_bearer_token(_consent(emu, wrong_secret)["code"])
    assert exc.value.status_code == 401


def test_refresh_rotates_and_old_refresh_token_dies(emu: QboEmulator) -> None:
    client, _realm = _connect(emu)
    first = client.refresh_token
    client.refresh()
    second = client.refresh_token
    assert second != first
    with pytest.raises(AuthClientError) as exc:
        client.refresh(refresh_token=first)
    _invalid_grant(exc)
    client.refresh(refresh_token=second)
    outcomes = [(r["grant_type"], r["outcome"]) for r in emu.token_requests]
    assert outcomes == [
        ("authorization_code", "ok"),
        ("refresh_token", "ok"),
        ("refresh_token", "invalid_grant"),
        ("refresh_token", "ok"),
    ]
    assert emu.token_requests[2]["refresh_token"] == first


def test_hard_expiry_header_adds_field(emu: QboEmulator) -> None:
    client, _realm = _connect(emu)
    assert client.x_refresh_token_hard_expires_in is None
    client.include_refresh_token_hard_expires_in = True
    client.refresh()
    hard: int = client.x_refresh_token_hard_expires_in  # type: ignore[assignment]
    assert 5 * 365 * 86400 - 60 < hard <= 5 * 365 * 86400
    assert emu.token_requests[-1]["hard_expiry_header"] is True


def test_revoke_kills_refresh_and_access_tokens(emu: QboEmulator) -> None:
    client, realm = _connect(emu)
    access, refresh = client.access_token, client.refresh_token
    assert client.revoke() is True
    assert refresh in emu.revoked_tokens
    response = Api(emu, realm, access).get("companyinfo/1")
    assert response.status_code == 401
    assert response.json()["fault"]["error"][0]["code"] == "3200"
    with pytest.raises(AuthClientError) as exc:
        client.refresh()
    _invalid_grant(exc)


def test_access_token_expiry_and_fault_switches(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    emu = clocked_emu
    client, realm = _connect(emu)
    api = Api(emu, realm, client.access_token)
    assert api.get("companyinfo/1").status_code == 200
    emu.faults.expire_access_tokens = True
    response = api.get("companyinfo/1")
    assert response.status_code == 401
    assert "AuthenticationFailed" in response.json()["fault"]["error"][0]["message"]
    emu.faults.expire_access_tokens = False
    clock.advance(3601)
    assert api.get("companyinfo/1").status_code == 401
    emu.faults.invalid_grant_next_refresh = True
    with pytest.raises(AuthClientError) as exc:
        client.refresh()
    _invalid_grant(exc)
    client.refresh()  # the flag is one-shot and the token itself survived
    assert Api(emu, realm, client.access_token).get("companyinfo/1").status_code == 200


def test_refresh_token_expires(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    client, _realm = _connect(clocked_emu)
    clock.advance(100 * 86400 + 1)
    with pytest.raises(AuthClientError) as exc:
        client.refresh()
    _invalid_grant(exc)


def test_token_for_other_realm_is_forbidden(emu: QboEmulator) -> None:
    a = emu.add_company()
    b = emu.add_company()
    response = Api(emu, b, emu.issue_tokens(a)["access_token"]).get("companyinfo/1")
    assert response.status_code == 403
    assert response.json()["fault"]["error"][0]["code"] == "3100"
    assert response.headers["intuit_tid"]


def test_refresh_grace_window(clocked_emu: QboEmulator, clock: FakeClock) -> None:
    clocked_emu.refresh_grace_seconds = 30
    client, _realm = _connect(clocked_emu)
    first = client.refresh_token
    client.refresh()
    clock.advance(10)
    client.refresh(refresh_token=first)  # still inside the grace window
    clock.advance(31)
    with pytest.raises(AuthClientError) as exc:
        client.refresh(refresh_token=first)
    _invalid_grant(exc)


def test_rotation_is_immediate_even_within_the_same_instant(clocked_emu: QboEmulator) -> None:
    client, _realm = _connect(clocked_emu)  # the fake clock never moves here
    first = client.refresh_token
    client.refresh()
    with pytest.raises(AuthClientError) as exc:
        client.refresh(refresh_token=first)
    _invalid_grant(exc)
