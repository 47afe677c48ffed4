"""The suite's fixtures, one module per concern (tests/fixtures_*.py), loaded as plugins.

A test module asks for a fixture by name and imports nothing to get it; plain helpers
(functions, classes, constants) are imported from their modules as usual.
"""

pytest_plugins = [
    "fixtures_db",  # a throwaway PostgreSQL server; `db_url` and `engine` over both backends
    "fixtures_sim",  # the platform simulator: `sim_server`, `simulator`
    "fixtures_storm",  # `storm`: a copy of the example storm (modules may have their own)
    "fixtures_peers",  # real servers: a Bluesky PDS, a Matrix Synapse
    "fixtures_sinks",  # local SMTP and JSON servers that keep what they receive
    "fixtures_platforms",  # two images on disk, for the per-platform client tests
    "fixtures_workers",  # `stormer run` processes on a storm with a real burst
    "fixtures_keyring",  # `memory_keyring`: a keyring in memory, read back by tests
    "fixtures_browser",  # headless Chromium through Playwright: `browser`, `page`, `serve_folder`
]
