"""Pushed events for portals: what an event is, how it is signed, when a failed
delivery is tried again, and which receivers may be called. Pure; delivery and the
outbox live at the edges."""
