"""Support for the black-box tests of authorization, written only against PHR's HTTP surface and
its command line:

- `PhrServer`: the real `phr` binary (path in $PHR_BIN) serving without --open-sandbox on a
  free loopback port with a temporary data folder, and operator commands on that folder;
  with PHR_TEST_ENGINE=postgres on a fresh database of the cluster $PHR_TEST_POSTGRES_URL
  names instead (with an identity key file in the data folder);
- `Browser`: a person at the sandbox identity provider, terms and consent pages (plain
  `requests` with a cookie jar, HTML forms parsed with the standard library);
- `authorize`: the SMART authorization-code flow with PKCE S256 driven by authlib;
- `validate`: every resource the server returns, checked with the FHIR R4 models of
  fhir.resources (an outside view of what is valid R4).
"""

import html.parser
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from fhir.resources import construct_fhir_element

SERVING = "PHR is serving FHIR R4 at "
REDIRECT_URI = "http://127.0.0.1:9/callback"
# What the public test app is registered for (and asks for).
PUBLIC_SCOPE = (
    "launch/patient openid fhirUser offline_access "
    "patient/Observation.read patient/Observation.write "
    "patient/Patient.read patient/AuditEvent.read"
)
CONFIDENTIAL_SCOPE = "launch/patient offline_access patient/Observation.read"


def engine_args(data):
    """`--database URL --identity-key FILE` for a fresh PostgreSQL database when the run is on
    PostgreSQL (PHR_TEST_ENGINE=postgres), else nothing (SQLite files in the data folder)."""
    if os.environ.get("PHR_TEST_ENGINE") != "postgres":
        return []
    server = os.environ.get("PHR_TEST_POSTGRES_URL")
    if not server:
        raise RuntimeError("PHR_TEST_ENGINE=postgres needs PHR_TEST_POSTGRES_URL (scripts/test sets it)")
    name = f"py_{os.getpid()}_{generate_token(8).lower()}"
    subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name}"], check=True, timeout=60)
    base, _, query = server.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    key = os.path.join(data, "identity.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    return ["--database", url, "--identity-key", key]


class PhrServer:
    def __init__(self, binary):
        self.binary = binary
        self.data = tempfile.mkdtemp(prefix="phr-python-")
        self.engine = engine_args(self.data)
        env = dict(os.environ, PHR_LOG="warn")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", self.data, *self.engine],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 120
        base = None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith(SERVING):
                base = line[len(SERVING):].strip()
                break
        if base is None:
            self.stop()
            raise RuntimeError("phr serve did not report its address")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        self.base = base
        self.root = base[: -len("/fhir/r4")]

    def admin(self, *args, check=True):
        """Runs an operator command on this server's data folder; returns stdout."""
        done = subprocess.run(
            [self.binary, *args, "--data", self.data, *self.engine, "--public-url", self.root],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"phr {args[0]} failed: {done.stderr}")
        return done

    def discovery(self):
        response = requests.get(f"{self.base}/.well-known/smart-configuration", timeout=30)
        response.raise_for_status()
        return response.json()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data, ignore_errors=True)


_next_individual = iter(range(900, 1000))


def make_hetu(birth_ddmmyy="150580", century="-"):
    """A fresh valid test personal identity code (individual number 900–999)."""
    individual = next(_next_individual)
    number = int(f"{birth_ddmmyy}{individual:03d}")
    check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[number % 31]
    return f"{birth_ddmmyy}{century}{individual:03d}{check}"



# ------------------------------------------------------------------ pages and forms


class Form:
    """One HTML form: where it posts and the fields a browser would send by default."""

    def __init__(self, action, method):
        self.action = action
        self.method = method
        self.fields = []  # (name, value) in document order
        self.buttons = []  # (name, value)
        self.inputs = set()


class _FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), (a.get("method") or "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            name = a.get("name")
            if not name:
                return
            form.inputs.add(name)
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind != "submit":
                form.fields.append((name, a.get("value", "")))
        elif tag == "button" and a.get("name"):
            form.buttons.append((a["name"], a.get("value", "")))

    def handle_data(self, data):
        self.text.append(data)


def parse_page(text):
    """The forms of a page and its visible text."""
    parser = _FormParser()
    parser.feed(text)
    return parser.forms, " ".join(" ".join(parser.text).split())


class PageError(Exception):
    """The flow stopped at a page that is not a login, terms or consent form."""

    def __init__(self, response, text):
        super().__init__(f"{response.status_code} at {response.url}: {text[:300]}")
        self.response = response
        self.status = response.status_code
        self.text = text


class Browser:
    """A person with a browser: follows redirects by hand (so the final redirect to the app is
    seen, not followed), logs in with `hetu`, accepts the terms and the consent."""

    def __init__(self, hetu, consent="allow", terms="accept", language="en"):
        self.hetu = hetu
        self.consent = consent
        self.terms = terms
        self.session = requests.Session()
        self.session.headers["Accept-Language"] = language
        self.pages = []  # the forms' actions, in order, for assertions

    def run(self, url, stop_at):
        """Goes to `url` and on through the pages until a redirect to `stop_at`; returns
        that redirect's URL. Raises PageError on any other final page."""
        response = self.session.get(url, allow_redirects=False, timeout=30)
        for _ in range(20):
            if response.is_redirect:
                target = urllib.parse.urljoin(response.url, response.headers["Location"])
                if target.startswith(stop_at):
                    return target
                response = self.session.get(target, allow_redirects=False, timeout=30)
                continue
            forms, text = parse_page(response.text)
            if response.status_code != 200 or not forms:
                raise PageError(response, text)
            form = forms[0]
            self.pages.append(form.action)
            fields = list(form.fields)
            if "hetu" in form.inputs:
                fields = [(n, v) for (n, v) in fields if n != "hetu"] + [("hetu", self.hetu)]
            elif form.action.endswith("/terms"):
                fields.append(("decision", self.terms))
            elif form.action.endswith("/consent"):
                fields.append(("decision", self.consent))
            else:
                raise PageError(response, f"unexpected form {form.action}: {text}")
            action = urllib.parse.urljoin(response.url, form.action)
            response = self.session.post(action, data=fields, allow_redirects=False, timeout=30)
        raise AssertionError("too many pages")


# ------------------------------------------------------------------ the OAuth client


def query(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


class Authorized:
    """The outcome of one authorization-code flow up to the redirect back to the app."""

    def __init__(self, client, verifier, redirect, state, browser):
        self.client = client
        self.verifier = verifier
        self.redirect = redirect
        self.state = state
        self.browser = browser

    @property
    def code(self):
        return query(self.redirect)["code"]


def public_client(server, scope, redirect_uri=None):
    return OAuth2Session(
        client_id="py-public",
        redirect_uri=redirect_uri or REDIRECT_URI,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def authorize(server, hetu, client=None, scope=PUBLIC_SCOPE, consent="allow", extra=None):
    """Runs the authorization request of `client` (default: the public app) through the
    sandbox identity provider, terms and consent as the citizen `hetu`, up to the redirect
    back to the app."""
    discovery = server.discovery()
    client = client or public_client(server, scope)
    verifier = generate_token(64)
    uri, state = client.create_authorization_url(
        discovery["authorization_endpoint"],
        code_verifier=verifier,
        aud=server.base,
        **(extra or {}),
    )
    browser = Browser(hetu, consent=consent)
    redirect = browser.run(uri, client.redirect_uri)
    return Authorized(client, verifier, redirect, state, browser)


def token_endpoint(server):
    return server.discovery()["token_endpoint"]


def raw_token_request(server, form, auth=None):
    """A token request outside authlib, for the refusals: (status, JSON body)."""
    response = requests.post(token_endpoint(server), data=form, auth=auth, timeout=30)
    return response.status_code, response.json()


# ------------------------------------------------------------------ FHIR


def fhir_get(server, token, path, **params):
    headers = {"Accept": "application/fhir+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(f"{server.base}/{path}", headers=headers, params=params, timeout=30)


def fhir_post(server, token, path, resource):
    return requests.post(
        f"{server.base}/{path}",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
        },
        json=resource,
        timeout=30,
    )


def validate(resource):
    """Parses `resource` with the FHIR R4 models of fhir.resources (raises on anything that
    is not valid R4: unknown elements, wrong types, missing required elements), Bundles with
    every entry's resource."""
    assert isinstance(resource, dict) and "resourceType" in resource, resource
    return construct_fhir_element(resource["resourceType"], resource)


def weight(patient, kg):
    """A body weight Observation valid under the Kanta profile."""
    import uuid

    return {
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"]},
        "language": "fi",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Paino {kg} kg</div>',
        },
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2024-05-01T08:00:00+03:00",
        "issued": "2024-05-01T08:00:00+03:00",
        "performer": [{"reference": f"Patient/{patient}"}],
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def eventually(predicate, seconds=3.0):
    """Polls `predicate` until it is true (changes made by another process reach the
    running server within half a second)."""
    deadline = time.monotonic() + seconds
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
