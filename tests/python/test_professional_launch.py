"""A professional's SMART standalone launch, as an independent client sees it: authlib drives
OAuth with PKCE through the sandbox's test-professional login, the ID token's fhirUser names
the professional (Practitioner), the citizen is found by identity code with POST _search,
and fhirclient reads what the citizen shares (and nothing after the consent is withdrawn)."""

import base64
import json
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from fhirclient.auth import FHIROAuth2Auth
from fhirclient.models.observation import Observation
from fhirclient.server import FHIRServer

from support import (
    REDIRECT_URI,
    authorize,
    fhir_post,
    make_hetu,
    parse_page,
    query,
    token_endpoint,
    validate,
    weight,
)

ORG = "1.2.246.10.7777777.10.0"
PRO_SCOPE = "openid fhirUser user/Observation.rs user/Patient.rs"


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def professional_sign_in(server, professional, name):
    """The authorization-code flow of the professional app up to its token response."""
    client = OAuth2Session(
        client_id="py-pro",
        redirect_uri=REDIRECT_URI,
        scope=PRO_SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    uri, state = client.create_authorization_url(
        server.discovery()["authorization_endpoint"], code_verifier=verifier, aud=server.base
    )
    browser = requests.Session()
    response = browser.get(uri, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    login = urllib.parse.urljoin(uri, response.headers["Location"])
    assert login.endswith("/oauth/professional-login")
    page = browser.get(login, allow_redirects=False, timeout=30)
    assert page.status_code == 200, page.text
    forms, _ = parse_page(page.text)
    fields = list(forms[0].fields) + [("professional", professional), ("name", name)]
    back = browser.post(
        urllib.parse.urljoin(login, forms[0].action), data=fields, allow_redirects=False, timeout=30
    )
    assert back.status_code == 303, back.text
    redirect = back.headers["Location"]
    assert redirect.startswith(REDIRECT_URI) and query(redirect)["state"] == state
    return client.fetch_token(
        token_endpoint(server), authorization_response=redirect, code_verifier=verifier
    )


def test_a_professional_completes_the_standalone_launch_and_reads_shared_data(server):
    server.admin("org", "register", "--oid", ORG, "--name", "Python-terveysasema")
    server.admin(
        "app", "register", "--id", "py-pro", "--name", "Python professional app",
        "--kind", "professional", "--org", ORG,
        "--scope", "user/Observation.rs user/Patient.rs", "--redirect-uri", REDIRECT_URI,
    )
    smart = server.discovery()
    assert "user/*.rs" in smart["scopes_supported"]
    assert "permission-user" in smart["capabilities"]

    # A citizen takes the service into use and stores a weight through their own app.
    hetu = make_hetu()
    flow = authorize(server, hetu)
    citizen = flow.client.fetch_token(
        token_endpoint(server), authorization_response=flow.redirect, code_verifier=flow.verifier
    )
    patient = citizen["patient"]
    created = fhir_post(server, citizen["access_token"], "Observation", weight(patient, 68.0))
    assert created.status_code == 201, created.text
    server.admin("care", "add", "--hetu", hetu, "--org", ORG)
    server.admin("consent", "give", "--hetu", hetu, "--content", "body-weight")

    token = professional_sign_in(server, "tp-py", "Doctor Python")
    assert "refresh_token" not in token
    assert "patient" not in token
    claims = claims_of(token["id_token"])
    assert claims["sub"] == "tp-py"
    assert claims["fhirUser"].endswith("/Practitioner/tp-py")

    # Finding the citizen: the identity code only in a POST body, never in the answer.
    access = token["access_token"]
    lookup = requests.post(
        f"{server.base}/Patient/_search",
        data={"identifier": f"urn:oid:1.2.246.21|{hetu}"},
        headers={"Authorization": f"Bearer {access}", "Accept": "application/fhir+json"},
        timeout=30,
    )
    assert lookup.status_code == 200, lookup.text
    bundle = lookup.json()
    validate(bundle)
    assert hetu not in lookup.text
    assert bundle["entry"][0]["resource"]["id"] == patient

    fhir = FHIRServer(None, base_uri=server.base)
    fhir.auth = FHIROAuth2Auth()
    fhir.auth.access_token = access
    shared = list(Observation.where({"patient": patient}).perform_resources_iter(fhir))
    assert [float(o.valueQuantity.value) for o in shared] == [68.0]
    validate(shared[0].as_json())

    server.admin("consent", "withdraw", "--hetu", hetu)
    refused = requests.get(
        f"{server.base}/Observation",
        params={"patient": patient},
        headers={"Authorization": f"Bearer {access}"},
        timeout=30,
    )
    assert refused.status_code == 403
