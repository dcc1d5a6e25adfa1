"""The SMART App Launch authorization-code flow with PKCE, as an independent client sees it:
authlib drives OAuth, a scripted browser logs in at the sandbox identity provider and
consents, fhirclient reads FHIR, fhir.resources validates what comes back."""

import datetime

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from fhirclient.auth import FHIROAuth2Auth
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer, FHIRUnauthorizedException

from support import (
    PageError,
    authorize,
    eventually,
    fhir_get,
    fhir_post,
    make_hetu,
    public_client,
    query,
    raw_token_request,
    token_endpoint,
    validate,
    weight,
)


def fhirclient_server(server, access_token):
    fhir = FHIRServer(None, base_uri=server.base)
    fhir.auth = FHIROAuth2Auth()
    fhir.auth.access_token = access_token
    return fhir


def sign_in(server, hetu=None, **kwargs):
    """The whole flow up to the token response: (Authorized, token dict)."""
    flow = authorize(server, hetu or make_hetu(), **kwargs)
    token = flow.client.fetch_token(
        token_endpoint(server),
        authorization_response=flow.redirect,
        code_verifier=flow.verifier,
    )
    return flow, token


def test_discovery_documents_describe_the_flow(server):
    smart = server.discovery()
    assert "S256" in smart["code_challenge_methods_supported"]
    assert "plain" not in smart["code_challenge_methods_supported"]
    assert smart["authorization_endpoint"] == f"{server.root}/oauth/authorize"
    assert smart["token_endpoint"] == f"{server.root}/oauth/token"
    assert "authorization_code" in smart["grant_types_supported"]
    root = requests.get(f"{server.root}/.well-known/smart-configuration", timeout=30).json()
    assert root == smart
    oidc = requests.get(f"{server.root}/.well-known/openid-configuration", timeout=30).json()
    assert oidc["issuer"] == server.root
    assert oidc["jwks_uri"] == f"{server.root}/oauth/jwks"
    metadata = fhir_get(server, None, "metadata")
    assert metadata.status_code == 200
    capabilities = validate(metadata.json())
    assert capabilities.fhirVersion == "4.0.1"


def test_full_flow_login_consent_token_read_refresh(server):
    hetu = make_hetu()
    flow, token = sign_in(server, hetu)

    # The pages a person went through: identity provider, terms (first use), consent.
    assert [p.rsplit("/", 1)[-1] for p in flow.browser.pages] == ["login", "terms", "consent"]
    back = query(flow.redirect)
    assert back["state"] == flow.state
    assert back["iss"] == server.root, "RFC 9207 issuer in the redirect"

    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 3600
    patient = token["patient"]
    assert token["sub"] == patient
    assert "patient/Observation.read" in token["scope"].split()
    assert token.get("refresh_token"), "offline_access gives a refresh token"
    assert token.get("id_token"), "openid gives an ID token"

    # Write with plain requests, read back with fhirclient; validate both with fhir.resources.
    created = fhir_post(server, token["access_token"], "Observation", weight(patient, 71.5))
    assert created.status_code == 201, created.text
    validate(created.json())
    obs_id = created.json()["id"]
    fhir = fhirclient_server(server, token["access_token"])
    observation = Observation.read(obs_id, fhir)
    assert observation.subject.reference == f"Patient/{patient}"
    assert float(observation.valueQuantity.value) == 71.5
    validate(observation.as_json())
    own = Patient.read(patient, fhir)
    assert own.id == patient
    assert all(i.system == "urn:ietf:rfc:3986" for i in own.identifier)
    validate(own.as_json())
    assert hetu not in str(own.as_json()), "the identity code is never in a resource"

    searched = fhir_get(server, token["access_token"], "Observation", patient=patient)
    assert searched.status_code == 200
    bundle = validate(searched.json())
    assert bundle.total == 1

    # Refresh rotates the refresh token; the new access token works.
    refreshed = flow.client.refresh_token(token_endpoint(server), refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["patient"] == patient
    assert Observation.read(obs_id, fhirclient_server(server, refreshed["access_token"])).id == obs_id

    # The citizen's own access log, as AuditEvents valid in R4.
    def logged():
        response = fhir_get(server, refreshed["access_token"], "AuditEvent", patient=patient)
        assert response.status_code == 200, response.text
        return response.json() if response.json().get("total", 0) >= 3 else None

    assert eventually(lambda: logged() is not None, seconds=5)
    audit = logged()
    validate(audit)
    for entry in audit["entry"]:
        assert entry["resource"]["resourceType"] == "AuditEvent"
        validate(entry["resource"])
        assert hetu not in str(entry["resource"])


def test_withdrawal_stops_the_token(server):
    hetu = make_hetu()
    flow, token = sign_in(server, hetu)
    access = token["access_token"]
    assert fhir_get(server, access, "Observation", patient=token["patient"]).status_code == 200

    server.admin("grant", "withdraw", "--hetu", hetu, "--app", "py-public")
    assert eventually(lambda: fhir_get(server, access, "Observation", patient=token["patient"]).status_code == 401)
    with pytest.raises(FHIRUnauthorizedException):
        Observation.read("anything", fhirclient_server(server, access))
    # Nor can the app refresh its way back in.
    status, body = raw_token_request(server, {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": "py-public",
    })
    assert (status, body["error"]) == (400, "invalid_grant")


def test_reused_refresh_token_revokes_the_family(server):
    flow, token = sign_in(server)
    first_refresh = token["refresh_token"]
    second = flow.client.refresh_token(token_endpoint(server), refresh_token=first_refresh)
    assert fhir_get(server, second["access_token"], "Observation", patient=token["patient"]).status_code == 200

    # The old refresh token again: refused, and everything of its family dies.
    status, body = raw_token_request(server, {
        "grant_type": "refresh_token",
        "refresh_token": first_refresh,
        "client_id": "py-public",
    })
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = raw_token_request(server, {
        "grant_type": "refresh_token",
        "refresh_token": second["refresh_token"],
        "client_id": "py-public",
    })
    assert (status, body["error"]) == (400, "invalid_grant")
    assert fhir_get(server, second["access_token"], "Observation", patient=token["patient"]).status_code == 401
    assert fhir_get(server, token["access_token"], "Observation", patient=token["patient"]).status_code == 401


def test_replayed_code_is_refused_and_revokes_its_tokens(server):
    flow, token = sign_in(server)
    assert fhir_get(server, token["access_token"], "Observation", patient=token["patient"]).status_code == 200
    with pytest.raises(OAuthError) as replay:
        flow.client.fetch_token(
            token_endpoint(server),
            authorization_response=flow.redirect,
            code_verifier=flow.verifier,
        )
    assert replay.value.error == "invalid_grant"
    assert fhir_get(server, token["access_token"], "Observation", patient=token["patient"]).status_code == 401


def test_pkce_mismatch_is_refused(server):
    flow = authorize(server, make_hetu())
    with pytest.raises(OAuthError) as refused:
        flow.client.fetch_token(
            token_endpoint(server),
            authorization_response=flow.redirect,
            code_verifier=flow.verifier[:-4] + "AAAA",
        )
    assert refused.value.error == "invalid_grant"
    # Without any verifier too.
    status, body = raw_token_request(server, {
        "grant_type": "authorization_code",
        "code": flow.code,
        "redirect_uri": flow.client.redirect_uri,
        "client_id": "py-public",
    })
    assert status == 400 and body["error"] in ("invalid_grant", "invalid_request")


def test_public_client_without_pkce_is_refused_at_authorize(server):
    client = public_client(server, "launch/patient patient/Observation.read")
    client.code_challenge_method = None
    uri, _ = client.create_authorization_url(
        server.discovery()["authorization_endpoint"], aud=server.base
    )
    assert "code_challenge" not in uri
    response = requests.get(uri, allow_redirects=False, timeout=30)
    if response.is_redirect:
        location = response.headers["Location"]
        assert location.startswith(client.redirect_uri), location
        assert query(location)["error"] == "invalid_request"
        assert "code" not in query(location)
    else:
        assert response.status_code == 400


def test_wrong_redirect_uri_is_refused(server):
    # At the authorization endpoint: an error page, never a redirect to the unregistered URI.
    evil = "http://127.0.0.1:9/evil"
    client = public_client(server, "launch/patient patient/Observation.read", redirect_uri=evil)
    uri, _ = client.create_authorization_url(
        server.discovery()["authorization_endpoint"], code_verifier="v" * 64, aud=server.base
    )
    response = requests.get(uri, allow_redirects=False, timeout=30)
    assert response.status_code == 400
    assert not response.headers.get("Location", "").startswith(evil)

    # At the token endpoint: a code issued for one redirect URI is not redeemed for another.
    flow = authorize(server, make_hetu())
    status, body = raw_token_request(server, {
        "grant_type": "authorization_code",
        "code": flow.code,
        "redirect_uri": evil,
        "client_id": "py-public",
        "code_verifier": flow.verifier,
    })
    assert (status, body["error"]) == (400, "invalid_grant")


def test_under_16_is_refused_with_a_clear_page(server):
    ten_years_ago = datetime.date.today().year - 10
    hetu = make_hetu(f"0101{ten_years_ago % 100:02d}", century="A")
    with pytest.raises(PageError) as stopped:
        authorize(server, hetu)
    page = stopped.value
    assert page.status in (200, 403)
    assert "16" in page.text and "aged 16 or over" in page.text, page.text
    assert "code=" not in page.response.headers.get("Location", "")


def test_denied_consent_returns_access_denied(server):
    flow = authorize(server, make_hetu(), consent="deny")
    back = query(flow.redirect)
    assert back["error"] == "access_denied"
    assert "code" not in back


def test_confidential_client_with_client_secret_basic(server):
    from authlib.integrations.requests_client import OAuth2Session

    from support import REDIRECT_URI

    client = OAuth2Session(
        client_id="py-confidential",
        client_secret=server.confidential_secret,
        redirect_uri=REDIRECT_URI,
        scope="launch/patient offline_access patient/Observation.read",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    flow, token = sign_in(server, client=client)
    assert fhir_get(server, token["access_token"], "Observation", patient=token["patient"]).status_code == 200
    # A wrong secret is invalid_client.
    status, body = raw_token_request(
        server,
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=("py-confidential", "not-the-secret"),
    )
    assert (status, body["error"]) == (401, "invalid_client")
