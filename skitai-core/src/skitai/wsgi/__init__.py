"""WSGI (PEP 3333): environ building, the app runner and `wsgi.file_wrapper`."""
