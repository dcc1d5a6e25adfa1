"""The deprecated STU3 endpoint, checked from outside: Kanta's STU3 blood glucose and
macronutrient Observations written through /fhir/stu3 with a SMART token, then every STU3
resource the server returns (read, searchset pages, history, the Patient, the
CapabilityStatement, the STU3 StructureDefinitions) parsed with the FHIR STU3 models of
fhir.resources, an independent view of what is valid STU3."""

import json
import pathlib

import requests
from fhir.resources.STU3 import construct_fhir_element as construct_stu3

from test_smart_flow import sign_in

EXAMPLE = (
    pathlib.Path(__file__).resolve().parents[3]
    / "shared" / "kanta" / "examples" / "diabetes-data-bundle-kantaphr-sv.json"
)
OBSERVATIONS = 60


def stu3(server):
    return f"{server.root}/fhir/stu3"


def parse_stu3(resource):
    """Parses `resource` with the STU3 models (raises on anything that is not valid STU3)."""
    assert isinstance(resource, dict) and "resourceType" in resource, resource
    return construct_stu3(resource["resourceType"], resource)


def get(server, token, address, **params):
    headers = {"Accept": "application/fhir+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.get(address, headers=headers, params=params, timeout=60)
    assert response.headers.get("Deprecation"), "every STU3 answer is marked deprecated"
    assert 'rel="successor-version"' in response.headers.get("Link", "")
    return response


def kanta_observations(patient):
    """The first STU3 Observations of Kanta's example batch, pointed at `patient`."""
    bundle = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    chosen = entries[:OBSERVATIONS - 1] + [
        e for e in entries if "macronutrient" in e["resource"]["meta"]["profile"][0]
    ][:1]
    for entry in chosen:
        entry["resource"]["subject"] = {"reference": f"Patient/{patient}"}
        entry["resource"]["performer"] = [{"reference": f"Patient/{patient}"}]
    return {"resourceType": "Bundle", "type": "batch", "entry": chosen}


def test_every_stu3_answer_parses_as_stu3(server):
    _, token = sign_in(server)
    access, patient = token["access_token"], token["patient"]
    bundle = kanta_observations(patient)
    response = requests.post(
        f"{stu3(server)}/",
        headers={"Authorization": f"Bearer {access}", "Content-Type": "application/fhir+json"},
        json=bundle,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}
    parse_stu3(answer)

    # Searchset pages, every resource in them.
    url = f"{stu3(server)}/Observation"
    params = {"patient": patient, "_count": "25"}
    seen = 0
    while url:
        page = get(server, access, url, **params)
        assert page.status_code == 200, page.text
        parsed = parse_stu3(page.json())
        for entry in parsed.entry or []:
            assert entry.search.mode == "match"
            assert entry.resource.resource_type == "Observation"
            seen += 1
        url = next((link["url"] for link in page.json().get("link", []) if link["relation"] == "next"), None)
        params = {}
    assert seen == OBSERVATIONS

    # A read, its history, and the searches by the STU3 category system.
    first = answer["entry"][0]["response"]["location"].split("/_history/")[0]
    read = get(server, access, f"{stu3(server)}/{first}")
    assert read.status_code == 200
    observation = parse_stu3(read.json())
    assert observation.category[0].coding[0].system == "http://hl7.org/fhir/observation-category"
    assert observation.meta.profile[0] == "http://phr.kanta.fi/StructureDefinition/fiphr-bloodglucose-stu3"
    parse_stu3(get(server, access, f"{stu3(server)}/{first}/_history").json())
    vital = get(
        server, access, f"{stu3(server)}/Observation",
        patient=patient, category="http://hl7.org/fhir/observation-category|vital-signs", _count="0",
    ).json()
    assert vital["total"] == OBSERVATIONS - 1
    parse_stu3(get(server, access, f"{stu3(server)}/Patient/{patient}").json())


def test_the_stu3_conformance_resources_parse_as_stu3(server):
    statement = get(server, None, f"{stu3(server)}/metadata")
    assert statement.status_code == 200
    parsed = parse_stu3(statement.json())
    assert parsed.fhirVersion == "3.0.1"
    for profile in statement.json()["profile"]:
        found = get(server, None, f"{stu3(server)}/StructureDefinition", url=profile["reference"])
        sd = parse_stu3(found.json()).entry[0].resource
        assert sd.resource_type == "StructureDefinition"
        assert sd.fhirVersion == "3.0.1"
