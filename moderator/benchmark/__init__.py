"""`python manage.py benchmark`: real servers on loopback, one load generator, one table of figures.

- `events`: signed Telnyx webhooks (the simulator's development key) in a realistic mix;
- `limit`: the bare ASGI app that only verifies the signature (the ceiling under the same server);
- `naive`: the obvious Django build (full middleware, one ORM insert and one commit per request, group_send);
- `servers`: each server under test is its own Daphne process with its own SQLite file;
- `load`: the aiohttp load generator and websocket clients (runs in the benchmark's own process);
- `worker`: what runs inside a server's environment (prepare the database, measure the live view render);
- `run`: the measurements, the table and the JSON.
"""
