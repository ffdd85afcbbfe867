"""Request bodies for the property tests (Hypothesis): any JSON, and bytes that are not.

Texts hold lone surrogates ("\\ud800": valid JSON that UTF-8 cannot encode),
numbers are any JSON number Python reads (NaN, infinities, integers past the
float range), values nest; rows mix the contract's fields, with good or any
values, with fields of any name. PROPERTY keeps each test bounded and
deterministic: the same examples on every run.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

GOOD = {"radius": 14.0, "texture": 20.5, "area": 610.0, "smoothness": 0.1, "clinic": "south"}

SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00"])  # st.text() never draws them
TEXTS = st.lists(st.characters() | SURROGATES, max_size=8).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=12,
)
ROWS = st.builds(
    lambda known, other: {**known, **other},
    st.fixed_dictionaries({}, optional={name: st.just(GOOD[name]) | JSON_VALUES for name in GOOD}),
    st.dictionaries(TEXTS, JSON_VALUES, max_size=2),
)


def encoded(body: Any) -> bytes:
    """JSON as a client sends it: ASCII, escapes for the rest (lone surrogates included)."""
    return json.dumps(body).encode()


BODIES = st.one_of(
    ROWS.map(encoded),
    st.lists(ROWS, max_size=5).map(lambda rows: encoded({"rows": rows})),
    st.dictionaries(st.just("rows"), JSON_VALUES).map(encoded),
    JSON_VALUES.map(encoded),
    st.binary(max_size=64),
)
REQUEST_IDS = st.from_regex(r"\A[0-9a-f]{32}\Z") | TEXTS | JSON_VALUES


def feedback_bodies(known_ids: list[str]) -> st.SearchStrategy[bytes]:
    """Feedback bodies: the fields with good or any values (a known id among them), others
    beside; any JSON; bytes."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "request_id": st.sampled_from(known_ids) | REQUEST_IDS,
            "row": st.integers() | JSON_VALUES,
            "outcome": st.sampled_from([0, 1]) | JSON_VALUES,
        },
    )
    return st.one_of(
        st.builds(lambda known, other: encoded({**known, **other}), fields,
                  st.dictionaries(TEXTS, JSON_VALUES, max_size=2)),
        JSON_VALUES.map(encoded),
        st.binary(max_size=64),
    )  # fmt: skip


CONTENT_TYPES = st.sampled_from(["application/json", "text/plain"])

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays deterministic
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one API for all examples
)
