"""A professional's SMART standalone launch, as an independent client sees it: authlib drives
OAuth with PKCE through the sandbox's test-professional login, the ID token's fhirUser names
the professional (Practitioner), the citizen is found by identity code with POST _search,
and fhirclient reads what the citizen shares (and nothing after the consent is withdrawn)."""

import base64
import json
import tempfile
import time
import urllib.parse
import uuid

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
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


def professional_sign_in(server, professional, name, scope=PRO_SCOPE, client_id="py-pro", **extra):
    """The authorization-code flow of the professional app up to its token response."""
    client = OAuth2Session(
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    uri, state = client.create_authorization_url(
        server.discovery()["authorization_endpoint"],
        code_verifier=verifier,
        aud=server.base,
        **extra,
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


def system_token(server, client_id, key, scope):
    """SMART Backend Services: a client_credentials token with a private_key_jwt assertion."""
    endpoint = token_endpoint(server)
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "ES256", "kid": key.as_dict()["kid"], "typ": "JWT"},
        {"iss": client_id, "sub": client_id, "aud": endpoint, "jti": str(uuid.uuid4()),
         "exp": now + 240},
        key,
    ).decode()
    response = requests.post(endpoint, data={
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_the_organisations_system_issues_an_ehr_launch_for_its_professional(server):
    org = "1.2.246.10.7777777.10.1"
    server.admin("org", "register", "--oid", org, "--name", "Python-sairaala")
    key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    key_id = key.thumbprint()
    key = JsonWebKey.import_key(key.as_dict(is_private=True), {"kid": key_id})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as jwks:
        json.dump({"keys": [key.as_dict(is_private=False)]}, jwks)
    server.admin(
        "app", "register", "--id", "py-ehr-system", "--name", "Python EHR system",
        "--kind", "professional", "--org", org, "--client-type", "private_key_jwt",
        "--jwks", jwks.name, "--scope", "system/EpisodeOfCare.write",
        "--redirect-uri", REDIRECT_URI,
    )
    server.admin(
        "app", "register", "--id", "py-pro-ehr", "--name", "Python professional app",
        "--kind", "professional", "--org", org,
        "--scope", "user/Observation.rs user/Patient.rs", "--redirect-uri", REDIRECT_URI,
    )
    # Another organisation's professional app (the first test's, when it ran).
    server.admin("org", "register", "--oid", ORG, "--name", "Python-terveysasema", check=False)
    server.admin(
        "app", "register", "--id", "py-pro", "--name", "Python professional app",
        "--kind", "professional", "--org", ORG,
        "--scope", "user/Observation.rs user/Patient.rs", "--redirect-uri", REDIRECT_URI,
        check=False,
    )
    assert "launch-ehr" in server.discovery()["capabilities"]

    hetu = make_hetu()
    flow = authorize(server, hetu)
    citizen = flow.client.fetch_token(
        token_endpoint(server), authorization_response=flow.redirect, code_verifier=flow.verifier
    )
    patient = citizen["patient"]
    system = system_token(server, "py-ehr-system", key, "system/EpisodeOfCare.write")

    launch_url = f"{server.root}/oauth/launch"
    assert requests.post(launch_url, data={"patient": patient}, timeout=30).status_code == 401
    issued = requests.post(
        launch_url,
        data={"identifier": f"urn:oid:1.2.246.21|{hetu}"},
        headers={"Authorization": f"Bearer {system}"},
        timeout=30,
    )
    assert issued.status_code == 200, issued.text
    assert hetu not in issued.text
    launch = issued.json()["launch"]
    bad = requests.post(
        launch_url,
        data={"identifier": "urn:oid:1.2.3|x"},
        headers={"Authorization": f"Bearer {system}"},
        timeout=30,
    )
    assert bad.status_code == 400

    scope = "launch openid fhirUser user/Observation.rs user/Patient.rs"
    token = professional_sign_in(
        server, "tp-ehr", "Doctor EHR", scope=scope, client_id="py-pro-ehr", launch=launch
    )
    assert token["patient"] == patient
    assert "refresh_token" not in token
    assert claims_of(token["id_token"])["fhirUser"].endswith("/Practitioner/tp-ehr")

    # A launch is used once, and only by its own organisation's applications.
    client = OAuth2Session(
        client_id="py-pro-ehr", redirect_uri=REDIRECT_URI, scope=scope,
        code_challenge_method="S256",
    )
    uri, _ = client.create_authorization_url(
        server.discovery()["authorization_endpoint"], code_verifier=generate_token(64),
        launch=launch,
    )
    again = requests.get(uri, allow_redirects=False, timeout=30)
    assert again.status_code == 303, again.text
    assert query(again.headers["Location"])["error"] == "invalid_request"
    other_org = requests.post(
        launch_url, data={"patient": patient},
        headers={"Authorization": f"Bearer {system}"}, timeout=30,
    ).json()["launch"]
    client = OAuth2Session(
        client_id="py-pro", redirect_uri=REDIRECT_URI, scope=scope, code_challenge_method="S256",
    )
    uri, _ = client.create_authorization_url(
        server.discovery()["authorization_endpoint"], code_verifier=generate_token(64),
        launch=other_org,
    )
    refused = requests.get(uri, allow_redirects=False, timeout=30)
    assert refused.status_code == 303, refused.text
    assert query(refused.headers["Location"])["error"] == "invalid_request"
