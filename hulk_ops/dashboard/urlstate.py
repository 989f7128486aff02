"""Page state in the URL: a page's window and filters are query parameters, so a link reopens what was seen.

`choice` seeds a widget's session state from the URL on the first run of a session (a value the widget does not
offer is ignored) and writes the widget's value back after it, leaving the URL bare for a default value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st


def choice(widget: Callable[..., Any], label: str, options: Sequence[str], default: str, key: str, param: str,
           **kwargs: Any) -> str:
    """`widget(label, options, key=key, **kwargs)` (st.segmented_control, st.selectbox, ...) bound to `?param=`."""
    if key not in st.session_state:
        wanted = st.query_params.get(param)
        st.session_state[key] = wanted if wanted in options else default
    value = widget(label, list(options), key=key, **kwargs) or default
    publish(param, value, default)
    return value


def publish(param: str, value: str | None, default: str | None = None) -> None:
    """The URL names `value` under `param` (no parameter for the default)."""
    current = st.query_params.get(param)
    if value is None or value == default:
        if current is not None:
            del st.query_params[param]
    elif current != value:
        st.query_params[param] = value
