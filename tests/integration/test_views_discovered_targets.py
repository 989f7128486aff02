"""The pages show targets the collector discovered (published in the store) and each target's origin."""

from __future__ import annotations

import time

import pytest
import redis

from hulk_ops.collectors.codec import Keys
from hulk_ops.core import discovered
from hulk_ops.core.config import load_config
from hulk_ops.probes import registry
from tests.seed import result, seed
from tests.views_support import set_last_write, texts

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures_views"]


def test_target_page_shows_a_discovered_target_and_its_origin(write_config, open_page, store_redis_url) -> None:
    now = time.time()
    path = write_config([
        {"name": "cluster", "kind": "kubernetes", "url": "http://127.0.0.1:1", "token": "t0ken-x"},
        {"name": "db", "kind": "postgres", "url": "postgresql://h/x"},
    ], discovery={"kubernetes": {"target": "cluster", "refresh_s": 5}})
    config = load_config(path)
    found = registry.settings_model("redis").model_validate(
        {"name": "cache.hulk-prod", "kind": "redis", "url": "redis://:pw-canary@10.0.0.7:6379/0",
         "origin": "kubernetes: hulk-prod/cache", "labels": {"team": "core"}})
    client = redis.Redis.from_url(store_redis_url)
    try:
        client.set(Keys(config.store.prefix).discovered, discovered.public([found]))
    finally:
        client.close()
    seed(config.model_copy(update={"targets": [*config.targets, found]}),
         [result("cache.hulk-prod", "redis", "up", now - 1, 1.2), result("db", "postgres", "up", now - 1, 2.0)], [])
    set_last_write(config, now)

    page = open_page(path, "target", query={"target": "cache.hulk-prod"})
    body = texts(page)
    assert "**cache.hulk-prod** · redis" in body and "origin: kubernetes: hulk-prod/cache" in body
    assert "pw-canary" not in body
    static = open_page(path, "target", query={"target": "db"})
    assert "origin: static (config file)" in texts(static)
