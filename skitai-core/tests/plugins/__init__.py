"""Plugins the tests load into servers."""
