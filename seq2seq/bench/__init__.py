"""Speed benchmark helpers (peer toolkits: peers.py)."""
