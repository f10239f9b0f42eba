"""Small helpers shared by every layer: the config base class and file helpers (no other act3d import)."""
