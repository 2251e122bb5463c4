"""Command-line tools (thin ctapipe Tools)."""
