"""The dashboard's handle on the guard: one GuardedAction per process, and a way to call it.

The guard is async (the CLI shares it); a Streamlit script runs in its own thread without an event
loop, so each call runs to completion with `asyncio.run`. Actions are rare; that is cheap enough.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import streamlit as st

from hulk_ops.actions.guard import GuardedAction, build_guard
from hulk_ops.dashboard import context

T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def guard() -> GuardedAction:
    return build_guard(context.config())


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
