"""A site's own session engines: a subclass of each scs_django engine, each in
a module of its own as ``SESSION_ENGINE`` wants (tests/test_engine_subclasses.py)."""
