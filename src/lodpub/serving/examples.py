"""Example queries shown on the landing page and in the query editor.

They are what a newcomer runs first, so each must stay quick at 100,000 measures: lists are ordered by
``lp:nameOrder`` (each measure's position by name, stated at build time; sorting the names themselves
took pyoxigraph 2-4x longer), counts are taken before labels are joined, and a word search stops at 100.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    title_ja: str
    title_en: str
    body: str

    def text(self, base: str) -> str:
        return prologue(base) + self.body

    def title(self, lang: str) -> str:
        return self.title_ja if lang == "ja" else self.title_en


def prologue(base: str) -> str:
    return (f"PREFIX lp: <{base}def/lodpub#>\n"
            "PREFIX org: <http://www.w3.org/ns/org#>\n"
            "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
            "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n"
            "PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n\n")


EXAMPLES = (
    Example("局の施策", "Measures of a bureau",
            """SELECT ?measure ?name ?section WHERE {
  ?bureau a lp:Bureau ; rdfs:label "総務局"@ja .
  ?measure lp:bureau ?bureau ; rdfs:label ?name ; lp:nameOrder ?position ;
           lp:responsibleUnit/rdfs:label ?section .
}
ORDER BY ?position
"""),
    Example("局ごとの施策数", "Number of measures per bureau",
            """SELECT ?bureau ?name ?measures WHERE {
  { SELECT ?bureau (COUNT(?measure) AS ?measures) WHERE { ?measure lp:bureau ?bureau } GROUP BY ?bureau }
  ?bureau rdfs:label ?name .
  FILTER(lang(?name) = "ja")
}
ORDER BY DESC(?measures)
"""),
    Example("令和6年度までに終わる施策", "Measures ending by fiscal 2024",
            """SELECT ?measure ?name ?end ?remarks WHERE {
  ?measure lp:endDate ?end ; rdfs:label ?name ; lp:remarks ?remarks ; lp:nameOrder ?position .
  FILTER(?end <= "2025-03-31"^^xsd:date)
}
ORDER BY ?end ?position
"""),
    Example("課の連絡先", "Contact points of a section",
            """SELECT ?section ?telephone WHERE {
  ?contact lp:unit ?unit ; lp:telephone ?telephone .
  ?unit rdfs:label "振興企画課"@ja ; rdfs:label ?section .
}
"""),
    Example("「移住」を含む施策", "Measures mentioning 移住",
            """SELECT ?measure ?name WHERE {
  ?measure a lp:Measure ; rdfs:label ?name ; lp:summary ?summary ; lp:nameOrder ?position .
  FILTER(CONTAINS(?name, "移住") || CONTAINS(?summary, "移住"))
}
ORDER BY ?position
LIMIT 100
"""),
)
