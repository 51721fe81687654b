from pgutil import schema  # noqa: F401  (the fixture, for every test module here)
