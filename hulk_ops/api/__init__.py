"""The read-only JSON API (`hulk-ops api`): Starlette on uvicorn, reading only the store.

`app.build_app(config)` is the ASGI app; `auth` authenticates bearer tokens and rate-limits per
principal; `views` turns the read model's objects into JSON; `openapi` is the served schema.
"""
