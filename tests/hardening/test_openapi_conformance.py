"""What schemathesis found beside server errors: a 405 names every method of its path in
`Allow`, `preset` and `method` are enums in the OpenAPI document, and every status a route
gives is documented."""

import httpx
import pytest

from labelgen.config import PRESETS
from labelgen.methods import METHODS
from tests.api.conftest import READ, WRITE, Server


@pytest.fixture(scope="module")
def openapi(server: Server) -> dict:
    return httpx.get(f"{server.url}/openapi.json").json()


def test_405_allow_lists_every_method_of_the_path(server: Server, openapi: dict) -> None:
    checked = 0
    for template, operations in openapi["paths"].items():
        documented = {m.upper() for m in operations if m in ("get", "post", "delete", "put",
                                                            "patch")}
        path = template.replace("{dataset_id}", "1").replace("{job_id}", "1") \
            .replace("{label_set_id}", "1").replace("{clip_id}", "c")
        for method in ("OPTIONS", "PUT", "PATCH") if documented else ():
            if method in documented:
                continue
            r = httpx.request(method, f"{server.url}{path}", headers=WRITE)
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert allowed == documented | ({"HEAD"} if "GET" in documented else set()) or \
                allowed == documented, (path, allowed, documented)
            assert r.json()["field"] is None
            checked += 1
    assert checked > 20


def test_preset_and_method_are_enums(openapi: dict) -> None:
    options = openapi["components"]["schemas"]["JobOptions"]["properties"]

    def enum_of(schema: dict) -> set:
        for branch in [schema, *schema.get("anyOf", [])]:
            if "enum" in branch:
                return set(branch["enum"])
            if "$ref" in branch:
                name = branch["$ref"].rsplit("/", 1)[-1]
                return set(openapi["components"]["schemas"][name]["enum"])
        return set()

    assert enum_of(options["preset"]) == set(PRESETS)
    assert enum_of(options["method"]) == set(METHODS)
    params = {p["name"]: p for p in openapi["paths"]["/v1/datasets"]["post"]["parameters"]}
    assert enum_of(params["preset"]["schema"]) == set(PRESETS)
    assert enum_of(params["method"]["schema"]) == set(METHODS)


def test_bad_preset_names_the_field(server: Server, dataset_id: int) -> None:
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"preset": "imdb"})
    assert r.status_code == 422 and r.json()["field"] == "body.preset", r.text


def test_forbidden_path_is_documented(openapi: dict, server: Server) -> None:
    assert "403" in openapi["paths"]["/v1/datasets"]["post"]["responses"]
    with server.client(READ) as c:
        assert c.get("/v1/datasets").status_code == 200
