"""The dumps over HTTP: right types, content-hash ETags, 304, ranges, gzip, versioned immutable URLs."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess

import httpx
import rdflib

from conftest import BASE


def test_each_file_has_its_type_and_a_content_hash_etag(server, served_dist):
    for name, media in (("measures.ttl", "text/turtle"), ("measures.nt", "application/n-triples"),
                        ("measures.jsonld", "application/ld+json"), ("void.ttl", "text/turtle"),
                        ("context.jsonld", "application/ld+json")):
        response = httpx.get(f"{server.url}/data/{name}", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media
        body = (served_dist / name).read_bytes()
        assert response.content == body
        assert response.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        assert response.headers["last-modified"].endswith("GMT")


def test_conditional_get_gives_304(server):
    first = httpx.get(f"{server.url}/data/measures.nt", headers={"Accept-Encoding": "identity"})
    again = httpx.get(f"{server.url}/data/measures.nt",
                      headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    since = httpx.get(f"{server.url}/data/measures.nt",
                      headers={"If-Modified-Since": first.headers["last-modified"], "Accept-Encoding": "identity"})
    assert since.status_code == 304


def test_range_requests(server, served_dist):
    body = (served_dist / "measures.nt").read_bytes()
    part = httpx.get(f"{server.url}/data/measures.nt", headers={"Range": "bytes=10-99", "Accept-Encoding": "identity"})
    assert part.status_code == 206
    assert part.content == body[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(body)}"
    beyond = httpx.get(f"{server.url}/data/measures.nt",
                       headers={"Range": f"bytes={len(body) + 10}-", "Accept-Encoding": "identity"})
    assert beyond.status_code == 416


def test_a_range_is_of_the_file_itself_whatever_the_client_accepts(server, served_dist):
    body = (served_dist / "measures.nt").read_bytes()
    for accept in ("gzip", "gzip, deflate, br", "identity"):
        part = httpx.get(f"{server.url}/data/measures.nt", headers={"Range": "bytes=100-", "Accept-Encoding": accept})
        assert part.status_code == 206, accept
        assert "content-encoding" not in part.headers
        assert part.content == body[100:]
        assert part.headers["etag"] == httpx.head(f"{server.url}/data/measures.nt",
                                                  headers={"Accept-Encoding": "identity"}).headers["etag"]


def test_a_download_cut_short_resumes_to_the_exact_file_with_httpx_curl_and_wget(server, served_dist, tmp_path):
    body = (served_dist / "measures.nt").read_bytes()
    url = f"{server.url}/data/measures.nt"
    cut = len(body) // 3
    # httpx, as a script resuming by hand would: its default Accept-Encoding asks for gzip.
    rest = httpx.get(url, headers={"Range": f"bytes={cut}-"})
    assert body[:cut] + rest.content == body
    clients = {"curl": lambda out: ["curl", "-sS", "--compressed", "-C", "-", "-o", str(out), url],
               "wget": lambda out: ["wget", "-q", "-c", "--header=Accept-Encoding: gzip", "-O", str(out), url]}
    for name, command in clients.items():
        if shutil.which(name) is None:
            print(f"{name} is not installed: not tried")
            continue
        out = tmp_path / f"{name}.nt"
        out.write_bytes(body[:cut])  # what an interrupted download left
        subprocess.run(command(out), check=True, timeout=60)
        assert out.read_bytes() == body, name


def test_gzip_is_served_from_the_precompressed_file(server, served_dist):
    response = httpx.get(f"{server.url}/data/measures.ttl", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["vary"]
    assert response.content == (served_dist / "measures.ttl").read_bytes()  # httpx decoded it
    raw = httpx.get(f"{server.url}/data/measures.ttl.gz")
    assert gzip.decompress(raw.content) == (served_dist / "measures.ttl").read_bytes()
    refused = httpx.get(f"{server.url}/data/measures.ttl", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    assert refused.content == (served_dist / "measures.ttl").read_bytes()


def test_versioned_urls_are_immutable(server, served_dist):
    edition = os.readlink(served_dist / "current")
    plain = httpx.get(f"{server.url}/data/measures.nt", headers={"Accept-Encoding": "identity"})
    assert f"</data/{edition}/measures.nt>" in plain.headers["link"]
    assert plain.headers["lodpub-edition"] == edition
    versioned = httpx.get(f"{server.url}/data/{edition}/measures.nt", headers={"Accept-Encoding": "identity"})
    assert versioned.status_code == 200
    assert versioned.content == (served_dist / edition / "measures.nt").read_bytes()
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{server.url}/data/000000000000/measures.nt").status_code == 404
    assert httpx.get(f"{server.url}/data/{edition}/nothing.nt").status_code == 404


def test_the_dataset_description_by_conneg_and_at_well_known_void(server):
    for path in ("/.well-known/void", "/data/measures", "/"):
        response = httpx.get(server.url + path, headers={"Accept": "text/turtle"})
        assert response.status_code == 200
        graph = rdflib.Graph().parse(data=response.text, format="turtle")
        assert (rdflib.URIRef(f"{BASE}data/measures"), rdflib.URIRef("http://rdfs.org/ns/void#sparqlEndpoint"),
                rdflib.URIRef(f"{BASE}sparql")) in graph
    landing = httpx.get(server.url + "/", headers={"Accept": "text/html"})
    assert "東京都 施策一覧" in landing.text and "measures.nt" in landing.text


def test_health(server):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["triples"] > 400 and health["workers"] == 2


def test_an_edition_in_the_tree_that_was_never_published_is_not_served(server, served_dist):
    # What a build killed between moving its edition in and pointing to it leaves: a whole edition no
    # published one names.
    stray = served_dist / "0123456789ab"
    shutil.copytree(served_dist / "current", stray)
    try:
        assert httpx.get(f"{server.url}/data/0123456789ab/void.ttl").status_code == 404
        current = os.readlink(served_dist / "current")
        assert httpx.get(f"{server.url}/data/{current}/void.ttl").status_code == 200
    finally:
        shutil.rmtree(stray)


def test_the_downloaded_json_ld_reads_offline_into_the_n_triples_graph(server):
    """pyld, under a document loader that refuses every request, reads the JSON-LD dump as downloaded (gzipped,
    as a client that accepts it gets it) into exactly the graph of the N-Triples dump."""
    import pyld.jsonld
    import rdflib.compare

    def offline(url: str, options: dict | None = None):
        raise pyld.jsonld.JsonLdError(f"no network in this test: {url}", "loading document failed")

    downloaded = httpx.get(f"{server.url}/data/measures.jsonld", headers={"Accept-Encoding": "gzip"})
    assert downloaded.status_code == 200 and downloaded.headers["content-encoding"] == "gzip"
    nquads = pyld.jsonld.to_rdf(downloaded.json(), {"format": "application/n-quads", "documentLoader": offline})
    from_jsonld = rdflib.Graph().parse(data=nquads, format="nquads")
    dump = rdflib.Graph().parse(data=httpx.get(f"{server.url}/data/measures.nt").text, format="nt")
    assert len(from_jsonld) == len(dump) > 400
    assert rdflib.compare.isomorphic(rdflib.compare.to_isomorphic(from_jsonld), rdflib.compare.to_isomorphic(dump))
