"""lodpub: publish tables of policy measures as Linked Open Data."""

__version__ = "0.1.0"
