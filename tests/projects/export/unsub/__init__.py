"""A library that exports web APIs to Skitai (see export/skitai)."""
