"""A Kanta CGM uploader's read-back, with an independent client: several thousand glucose
readings stored with 300-entry batch Bundles (conditional creates, posted to the base with a
trailing slash), then a wide date range read with fhirclient following `next` links. The
number of entries read must equal `Bundle.total`, which every page carries."""

import datetime
import uuid

import requests
from fhirclient.models.observation import Observation

from support import validate
from test_smart_flow import fhirclient_server, sign_in

READINGS = 3000
BATCH = 300
START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))


def glucose(patient, when, mmol):
    """A blood glucose Observation valid under the Kanta profile, as a CGM uploader writes it."""
    instant = when.isoformat(timespec="seconds")
    return {
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"]},
        "language": "fi",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Verensokeri {mmol} mmol/l</div>',
        },
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }]}],
        "code": {"coding": [{
            "system": "http://loinc.org",
            "code": "14745-4",
            "display": "Glucose [Moles/volume] in Body fluid",
        }]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": instant,
        "issued": instant,
        "performer": [{"reference": f"Patient/{patient}"}],
        "valueQuantity": {
            "value": mmol, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L",
        },
    }


def upload(server, access_token, readings):
    """Stores `readings` with batch Bundles of at most BATCH entries, as Kanta's uploaders do."""
    for start in range(0, len(readings), BATCH):
        chunk = readings[start:start + BATCH]
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{
                "resource": r,
                "request": {
                    "method": "POST",
                    "url": "Observation/",
                    "ifNoneExist": "identifier=" + r["identifier"][0]["value"],
                },
            } for r in chunk],
        }
        response = requests.post(
            f"{server.base}/",
            headers={
                "Authorization": f"Bearer {access_token}",
                "Content-Type": "application/fhir+json; charset=UTF-8",
            },
            json=bundle,
            timeout=600,
        )
        assert response.status_code == 200, response.text
        statuses = {e["response"]["status"] for e in response.json()["entry"]}
        assert statuses == {"201 Created"}, statuses


def test_paging_a_wide_date_range_reads_as_many_entries_as_the_total(server):
    flow, token = sign_in(server)
    patient = token["patient"]
    assert token["sub"] == patient, "the token response names the citizen's Patient"
    readings = [
        glucose(patient, START + datetime.timedelta(minutes=5 * i), round(4 + (i % 60) / 10, 1))
        for i in range(READINGS)
    ]
    upload(server, token["access_token"], readings)

    fhir = fhirclient_server(server, token["access_token"])
    search = Observation.where(struct={
        "patient": patient,
        "code": "14745-4",
        "date": {"$and": ["ge2023-12-01", "le2024-12-31"]},
        "_sort": "date",
        "_count": "20000",
    })
    # fhirclient follows the `next` links itself.
    totals = []
    read = []
    for bundle in search.perform_iter(fhir):
        totals.append(bundle.total)
        for entry in bundle.entry or []:
            assert entry.search.mode == "match"
            assert isinstance(entry.resource, Observation)
            read.append(entry.resource.identifier[0].value)
    total = totals[0]
    assert total == READINGS
    assert totals == [total] * len(totals), "every page carries the total"
    pages = len(totals)
    assert len(read) == total
    assert pages == 3, "pages of 1000: the requested _count of 20000 is lowered silently"
    assert read == [r["identifier"][0]["value"] for r in readings], "each once, oldest first"
    last = Observation.where(struct={"identifier": read[-1], "patient": patient}).perform_iter(fhir)
    validate(next(last).as_json())
