"""A small Django project for benchmarks/server.py: one engine per server
process, chosen by the environment, with a read, a write and a login page."""
