"""Property-based fuzzing of everything that reads untrusted input: the feature encoders (batch and
one event at a time), the device's sanitizer in front of them, and the raw-log readers.

The promise pinned down here: arbitrary input (huge, negative, NaN and infinite numbers; empty,
giant and non-ASCII strings; wrong types; out-of-order and duplicate timestamps) either encodes to
ids inside every embedding table, or is refused with ``DipnValidationError`` (``RawDataError`` for
files), never any other exception. On the device, the sanitizer plus the encoder never raise at
all. ``make test`` runs a bounded number of examples; ``make test-all`` also runs the long ones.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dipn.logs.readers import RawDataError, read_view
from dipn.errors import DipnValidationError
from dipn.features import SEQUENCE_ENCODERS, STATIC_ENCODERS, FeatureManifest, StreamEncoder, Vocabulary
from dipn.features.contract import SCHEMAS
from dipn.features.contract import VIEW_COLUMNS
from dipn.features.spec import BROWSE_ACTIONS, SWIPE_ACTIONS, TAP_EVENTS
from dipn.features.timing import previous_timestamps
from mobile_demo.sanitize import Sanitizer
from tests.test_features import streams as valid_streams

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCREEN = (360.0, 780.0)
SEQUENCE_VIEWS = ("swipe", "tap", "browse")
KIND = {"swipe": ("type", SWIPE_ACTIONS), "tap": ("event", TAP_EVENTS), "browse": ("action", BROWSE_ACTIONS)}
TS_2023 = 1_700_000_000_000


def _manifest() -> FeatureManifest:
    return FeatureManifest().with_vocabularies({
        "swipe.page": Vocabulary(("Page_Home", "Page_Detail")),
        "tap.page": Vocabulary(("Page_Home",)),
        "tap.button": Vocabulary(("Page_Detail_Button-Cart",)),
        "browse.leaf_category": Vocabulary(("c1", "c2")),
        "browse.top_category": Vocabulary(("t1",)),
        "browse.page": Vocabulary(("Page_Detail",)),
    })  # fmt: skip


MANIFEST = _manifest()

# ---- strategies --------------------------------------------------------------------------------

GIANT = "Page_" + "x" * 100_000
huge_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, -(2**63)]),
                      st.sampled_from([10**400, -(10**400)]))  # beyond float: float() raises OverflowError
wild_floats = st.floats(allow_nan=True, allow_infinity=True)
wild_strings = st.one_of(st.text(max_size=30), st.just(""), st.just(GIANT), st.just("\x00\n\"',;"))
wild_values = st.one_of(st.none(), st.booleans(), huge_ints, wild_floats, wild_strings,
                        st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def plausible(name: str, view: str) -> st.SearchStrategy:
    """A value that is often right, so the fuzzer gets past the first check and deeper in."""
    if name == KIND[view][0]:
        return st.sampled_from(KIND[view][1])
    if name in ("x", "x0", "x1"):
        return st.floats(-50, SCREEN[0] + 50)
    if name in ("y", "y0", "y1"):
        return st.floats(-50, SCREEN[1] + 50)
    if name in ("duration_ms", "stay_ms"):
        return st.floats(-1000, 5e6)
    if name in ("page", "button", "leaf_category", "top_category"):
        return st.sampled_from(["Page_Home", "Page_Detail", "Page_Detail_Button-Cart", "c1", "t1", "unseen"])
    if name in ("screen_w", "screen_h"):
        return st.floats(1, 4000)
    return st.text(max_size=8)


@st.composite
def raw_event(draw: st.DrawFn, view: str) -> dict:
    """A raw event of ``view`` without its ts: each field plausible, wild or absent; extra keys too."""
    event = {}
    for name in VIEW_COLUMNS[view]:
        if name == "ts":
            continue
        choice = draw(st.sampled_from(("plausible", "plausible", "wild", "absent")))
        if choice == "plausible":
            event[name] = draw(plausible(name, view))
        elif choice == "wild":
            event[name] = draw(wild_values)
    event |= draw(st.dictionaries(st.text(max_size=5), wild_values, max_size=2))
    return event


@st.composite
def timestamps(draw: st.DrawFn, n: int) -> list:
    """In order, out of order, duplicated, or wild (NaN, inf, negative, beyond int64)."""
    shape = draw(st.sampled_from(("ascending", "shuffled", "duplicates", "wild")))
    if shape == "wild":
        return draw(st.lists(st.one_of(huge_ints, wild_floats, st.integers(0, 2**53)), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    ts = (TS_2023 + np.cumsum(gaps)).tolist()
    if shape == "shuffled":
        ts = draw(st.permutations(ts))
    elif shape == "duplicates":
        ts = [ts[0]] * n
    return ts


@st.composite
def event_stream(draw: st.DrawFn) -> tuple[str, list[dict]]:
    view = draw(st.sampled_from(SEQUENCE_VIEWS))
    events = draw(st.lists(raw_event(view), min_size=1, max_size=12))
    for event, ts in zip(events, draw(timestamps(len(events))), strict=True):
        if draw(st.integers(0, 9)):  # now and then no ts at all
            event["ts"] = ts
    return view, events


# ---- properties ----------------------------------------------------------------------------------


def assert_ids_in_range(ids: np.ndarray, group: str) -> None:
    sizes = np.array([spec.num_embeddings for spec in MANIFEST.config.group(group)])
    assert ids.dtype == np.int32 and ids.shape[-1] == len(sizes)
    assert ((ids >= 0) & (ids < sizes)).all(), (group, ids)


def _encode_or_refuse(encode, *args) -> np.ndarray | None:  # noqa: ANN001 (an encoder)
    """The encoder's result, or None when it refused with our validation error (the only one allowed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy overflow or invalid-cast warning is a bug too
            return encode(*args)
    except DipnValidationError:
        return None


def _columns(view: str, events: list[dict]) -> dict[str, np.ndarray]:
    """Columns the way a careless caller might build them: object arrays of whatever came in."""
    columns = {}
    for name in VIEW_COLUMNS[view]:
        column = np.empty(len(events), dtype=object)
        for i, event in enumerate(events):  # one by one: numpy would unpack a list value into a row
            column[i] = event.get(name)
        columns[name] = column
    return columns


def check_stream_encoder(view: str, events: list[dict]) -> None:
    encoder = StreamEncoder(MANIFEST, *SCREEN)
    for event in events:
        ids = _encode_or_refuse(encoder.encode, view, event)
        if ids is not None:
            assert_ids_in_range(ids, view)


def check_batch_encoder(view: str, events: list[dict]) -> None:
    columns = _columns(view, events)
    try:
        prev = previous_timestamps(columns["ts"])
    except DipnValidationError:
        return
    ids = _encode_or_refuse(SEQUENCE_ENCODERS[view], columns, MANIFEST, prev)
    if ids is not None:
        assert ids.shape[0] == len(events)
        assert_ids_in_range(ids, view)


def check_device_path(view: str, events: list[dict]) -> None:
    """What the phone runs: nothing the app hands over may raise, whatever it is."""
    sanitizer, encoder = Sanitizer(*SCREEN), StreamEncoder(MANIFEST, *SCREEN)
    last = -math.inf
    for event in events:
        clean = sanitizer.clean(view, event)
        if clean is None:
            continue
        assert clean["ts"] >= last  # the sanitizer never lets time run backwards
        last = clean["ts"]
        assert_ids_in_range(encoder.encode(view, clean), view)


@QUICK
@given(event_stream())
def test_stream_encoder_gives_ids_in_range_or_a_validation_error(case: tuple[str, list[dict]]) -> None:
    check_stream_encoder(*case)


@QUICK
@given(event_stream())
def test_batch_encoders_give_ids_in_range_or_a_validation_error(case: tuple[str, list[dict]]) -> None:
    check_batch_encoder(*case)


@QUICK
@given(event_stream())
def test_the_device_sanitizer_and_encoder_never_raise(case: tuple[str, list[dict]]) -> None:
    check_device_path(*case)


@QUICK
@given(valid_streams())
def test_the_sanitizer_leaves_valid_events_as_they_are(case: tuple[str, list[dict]]) -> None:
    """Repairs are for broken events only: a valid stream encodes the same with or without it."""
    view, events = case
    sanitizer = Sanitizer(*SCREEN, clock=lambda: float(2**53))  # a clock past every generated event
    direct, cleaned = StreamEncoder(MANIFEST, *SCREEN), StreamEncoder(MANIFEST, *SCREEN)
    for event in events:
        clean = sanitizer.clean(view, event)
        assert clean is not None
        np.testing.assert_array_equal(cleaned.encode(view, clean), direct.encode(view, event))
    assert not sanitizer.counts, sanitizer.counts


@st.composite
def static_rows(draw: st.DrawFn) -> tuple[str, dict[str, np.ndarray]]:
    group = draw(st.sampled_from(("history", "profile")))
    n = draw(st.integers(1, 5))
    columns = {}
    for name in VIEW_COLUMNS[group]:
        values = draw(st.lists(st.one_of(huge_ints, wild_floats, st.integers(-5, 500)), min_size=n, max_size=n))
        column = np.empty(n, dtype=object)
        for i, value in enumerate(values):
            column[i] = value
        columns[name] = column
    return group, columns


@QUICK
@given(static_rows())
def test_static_encoders_give_ids_in_range_or_a_validation_error(case: tuple[str, dict]) -> None:
    group, columns = case
    ids = _encode_or_refuse(STATIC_ENCODERS[group], columns, MANIFEST)
    if ids is not None:
        assert_ids_in_range(ids, group)


@QUICK
@given(st.sampled_from(("history", "profile")), st.dictionaries(st.sampled_from(VIEW_COLUMNS["history"]
                                                                                + VIEW_COLUMNS["profile"]),
                                                                 wild_values))  # fmt: skip
def test_the_device_static_path_never_raises(group: str, values: dict) -> None:
    """What ``IntentScorer.set_user`` runs: whatever the app hands over, ids in range."""
    clean = Sanitizer(*SCREEN).clean_static(group, values)
    ids = STATIC_ENCODERS[group]({n: np.array([v]) for n, v in clean.items()}, MANIFEST)
    assert_ids_in_range(ids, group)


# ---- readers ---------------------------------------------------------------------------------------

cell_text = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["", "NaN", "nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "9" * 40, "-9" * 20,
                     "1.5", "tap", "swipe", "button", "purchase", "Page_Home", GIANT, "\"", "a,b", "\r\n"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(repr),
)


def plausible_cell(name: str, view: str) -> st.SearchStrategy[str]:
    """Text of a value that is often valid, so that rows get through the reader to the encoder."""
    if name in ("ts", "as_of_ts"):
        return st.integers(-10, 2**63 - 1).map(str)
    if name == "user_id":
        return st.sampled_from(["u1", "u2"])
    if view in KIND:
        return plausible(name, view).map(str)
    return st.integers(-5, 300).map(str)


@st.composite
def raw_file(draw: st.DrawFn) -> tuple[str, str, list[dict]]:
    """A view, a format and records whose cells are arbitrary or plausible text; columns may go missing."""
    view = draw(st.sampled_from(tuple(SCHEMAS)))
    names = [rule.name for rule in SCHEMAS[view]]
    if draw(st.integers(0, 9)) == 0:
        names = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    cells = {n: st.one_of(plausible_cell(n, view), cell_text) for n in names}
    rows = draw(st.lists(st.fixed_dictionaries(cells), max_size=8))
    fmt = draw(st.sampled_from(("csv", "jsonl", "parquet")))
    return view, fmt, rows


@st.composite
def typed_jsonl(draw: st.DrawFn) -> tuple[str, list[dict]]:
    """JSON Lines records with typed wild values (numbers, booleans, nulls, lists) per column."""
    view = draw(st.sampled_from(tuple(SCHEMAS)))
    names = [rule.name for rule in SCHEMAS[view]]
    scalar = st.one_of(st.none(), st.booleans(), huge_ints, st.floats(allow_nan=False, allow_infinity=False),
                       wild_strings, st.lists(st.integers(), max_size=2))
    return view, draw(st.lists(st.fixed_dictionaries({n: scalar for n in names}), min_size=1, max_size=6))


def _write(path: Path, fmt: str, rows: list[dict], names: list[str]) -> Path:
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows) or "\n", encoding="utf-8")
    else:
        pl.DataFrame({n: [row[n] for row in rows] for n in names}, schema={n: pl.String for n in names}).write_parquet(path)
    return path


def check_reader(path: Path, view: str) -> None:
    for lenient in (False, True):
        try:
            result = read_view(path, view, lenient=lenient)
        except RawDataError:
            continue
        frame = result.frame
        assert frame.columns == [rule.name for rule in SCHEMAS[view]]
        report = result.report
        assert report.rows_kept == frame.height
        assert report.rows_read == report.rows_kept + sum(report.dropped.values())
        for rule in SCHEMAS[view]:
            values = frame[rule.name].drop_nulls()
            if rule.dtype == "float":
                assert values.is_finite().all(), rule.name  # NaN and infinities are not numbers
            if rule.minimum is not None:
                assert (values >= rule.minimum).all(), rule.name
            if not rule.nullable:
                assert frame[rule.name].null_count() == 0, rule.name
        if view in SEQUENCE_VIEWS and frame.height:  # what a reader keeps, the encoder takes (or refuses)
            columns = {name: frame[name].to_numpy() for name in frame.columns}
            try:
                prev = previous_timestamps(columns["ts"], columns["user_id"])
            except DipnValidationError:
                continue
            ids = _encode_or_refuse(SEQUENCE_ENCODERS[view], columns, MANIFEST, prev)
            if ids is not None:
                assert_ids_in_range(ids, view)


@QUICK
@given(raw_file())
def test_readers_keep_only_valid_rows_or_raise_raw_data_error(tmp_path_factory: pytest.TempPathFactory,
                                                               case: tuple[str, str, list[dict]]) -> None:
    view, fmt, rows = case
    names = list(rows[0]) if rows else [rule.name for rule in SCHEMAS[view]]
    path = _write(tmp_path_factory.mktemp("fuzz") / f"{view}.{fmt}", fmt, rows, names)
    check_reader(path, view)


@QUICK
@given(typed_jsonl())
def test_readers_take_typed_json_values_or_raise_raw_data_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 case: tuple[str, list[dict]]) -> None:
    view, rows = case
    path = tmp_path_factory.mktemp("fuzz") / f"{view}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    check_reader(path, view)


raw_lines = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b'{"user_id": 1, "ts": [1]}', b"[1,2]", b"3", b"null", b'{"ts": {"a": 1}}', b"\xef\xbb\xbfuser_id,ts",
                     b'{"user_id":"u","ts":1e400}', b'{"user_id":"u","ts":99999999999999999999999}', b"u,\"1",
                     b"user_id,ts,type,page", b"u,1,tap,P", b"\x00\x00", b"\xff\xfe"]),
)


@QUICK
@given(st.sampled_from(tuple(SCHEMAS)), st.sampled_from(("csv", "jsonl", "parquet", "csv.gz")), st.lists(raw_lines, max_size=6))
def test_readers_survive_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, view: str, fmt: str,
                                         lines: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"{view}.{fmt}"
    path.write_bytes(b"\n".join(lines))
    check_reader(path, view)


# ---- the long run ----------------------------------------------------------------------------------


@pytest.mark.slow
@LONG
@given(event_stream())
def test_long_fuzz_of_every_encoder_path(case: tuple[str, list[dict]]) -> None:
    check_stream_encoder(*case)
    check_batch_encoder(*case)
    check_device_path(*case)


@pytest.mark.slow
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_file())
def test_long_fuzz_of_the_readers(tmp_path_factory: pytest.TempPathFactory, case: tuple[str, str, list[dict]]) -> None:
    view, fmt, rows = case
    names = list(rows[0]) if rows else [rule.name for rule in SCHEMAS[view]]
    check_reader(_write(tmp_path_factory.mktemp("fuzz") / f"{view}.{fmt}", fmt, rows, names), view)
