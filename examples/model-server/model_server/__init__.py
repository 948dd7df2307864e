"""servestack's reference model server (see ../README.md)."""
