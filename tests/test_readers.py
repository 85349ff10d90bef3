"""Raw event readers: every contract rule names file, line, column and rule; lenient mode counts."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dipn.logs.readers import RawDataError, ReadResult, read_dataset, read_view, write_view
from dipn.errors import DipnValidationError
from dipn.features.contract import SCHEMAS

SWIPE_HEADER = "user_id,ts,type,page,x,y,x0,y0,x1,y1,duration_ms,screen_w,screen_h"
OPEN = "u1,1000,open_page,home,,,,,,,,400,800"
TAP = "u1,1100,tap,home,10,20,,,,,,400,800"
SWIPE = "u1,1200,swipe,home,,,1,2,3,4,40,400,800"
TAP_HEADER = "user_id,ts,event,page,button"


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def swipe_csv(tmp_path: Path, *rows: str) -> Path:
    return write_csv(tmp_path / "swipe.csv", SWIPE_HEADER, *rows)


def error_of(path: Path, view: str = "swipe") -> RawDataError:
    with pytest.raises(RawDataError) as info:
        read_view(path, view)
    return info.value


def assert_error(err: RawDataError, path: Path, line: int | None, column: str | None, rule: str) -> None:
    assert (err.path, err.line, err.column, err.rule) == (path, line, column, rule), str(err)
    assert str(err).startswith(str(path))
    if line is not None:
        assert f"line {line}" in str(err) or f"row {line}" in str(err)
    if column is not None:
        assert f"column {column!r}" in str(err)


def swipe_rows(*records: dict) -> list[dict]:
    """Full swipe records: an open_page event overridden by the given fields."""
    base = dict(user_id="u1", ts=1000, type="open_page", page="home", x=None, y=None, x0=None,
                y0=None, x1=None, y1=None, duration_ms=None, screen_w=400.0, screen_h=800.0)  # fmt: skip
    return [{**base, **r} for r in records]


# --------------------------------------------------------------------------- one test per rule


def test_negative_duration_names_file_line_column_and_rule(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, TAP, "u1,1300,swipe,home,,,1,2,3,4,-40,400,800")
    err = error_of(path)
    assert_error(err, path, 4, "duration_ms", "negative")
    assert str(err) == (
        f"{path}, line 4, column 'duration_ms': negative duration (-40); durations must be >= 0"
    )


def test_errors_survive_pickling(tmp_path: Path) -> None:
    """Readers may run in worker processes; their errors must come back whole."""
    err = error_of(swipe_csv(tmp_path, "u1,-5,open_page,home,,,,,,,,400,800"))
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.path, back.line, back.column, back.rule) == (
        str(err), err.path, err.line, err.column, err.rule
    )


def test_negative_timestamp(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,-5,open_page,home,,,,,,,,400,800")
    assert_error(error_of(path), path, 3, "ts", "negative")


def test_non_numeric_value_is_not_a_number(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,1100,tap,home,ten,20,,,,,,400,800")
    err = error_of(path)
    assert_error(err, path, 3, "x", "not_a_number")
    assert "'ten'" in str(err)


def test_fractional_timestamp_is_not_a_number_but_whole_float_is_fine(tmp_path: Path) -> None:
    path = swipe_csv(
        tmp_path, "u1,1000.0,open_page,home,,,,,,,,400,800", "u1,1000.5,open_page,home,,,,,,,,400,800"
    )
    err = error_of(path)
    assert_error(err, path, 3, "ts", "not_a_number")
    assert "whole number of milliseconds" in str(err)


def test_nan_is_not_a_number(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, "u1,1100,tap,home,nan,20,,,,,,400,800")
    assert_error(error_of(path), path, 2, "x", "not_a_number")


def test_screen_below_minimum(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,1000,open_page,home,,,,,,,,0,800")
    err = error_of(path)
    assert_error(err, path, 3, "screen_w", "below_minimum")
    assert ">= 1" in str(err)


def test_unknown_action_type(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, TAP, SWIPE, "u1,1300,scroll,home,,,,,,,,400,800")
    err = error_of(path)
    assert_error(err, path, 5, "type", "unknown_value")
    assert "'scroll'" in str(err) and "open_page" in str(err)


def test_missing_value_in_required_column(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,1100,open_page,,,,,,,,,400,800")
    assert_error(error_of(path), path, 3, "page", "missing_value")


def test_swipe_without_start_point_is_missing_required_for_type(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,1200,swipe,home,,,,2,3,4,40,400,800")
    err = error_of(path)
    assert_error(err, path, 3, "x0", "missing_required_for_type")
    assert "'swipe'" in str(err)


def test_button_event_without_button(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tap.csv", TAP_HEADER, "u1,1,page,home,", "u1,2,button,home,")
    assert_error(error_of(path, "tap"), path, 3, "button", "missing_required_for_type")


def test_coordinate_beyond_screen_is_off_screen(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "u1,1100,tap,home,10,801,,,,,,400,800")
    err = error_of(path)
    assert_error(err, path, 3, "y", "off_screen")
    assert "801" in str(err) and "800" in str(err)


def test_coordinate_on_screen_edge_is_fine(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, "u1,1100,tap,home,400,800,,,,,,400,800")
    assert read_view(path, "swipe").frame.height == 1


def test_missing_required_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tap.csv", "user_id,event,page,button", "u1,page,home,")
    err = error_of(path, "tap")
    assert_error(err, path, None, "ts", "missing_column")
    with pytest.raises(RawDataError, match="missing_column|missing required column"):
        read_view(path, "tap", lenient=True)


def test_missing_column_hints_at_case(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tap.csv", "user_id,TS,event,page", "u1,1,page,home")
    assert "'TS'" in str(error_of(path, "tap"))


def test_ragged_csv_line_is_unreadable_with_its_line(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, OPEN, OPEN + ",extra")
    assert_error(error_of(path), path, 4, None, "unreadable")


def test_empty_and_absent_files_are_unreadable(tmp_path: Path) -> None:
    empty = tmp_path / "swipe.csv"
    empty.write_text("")
    assert_error(error_of(empty), empty, None, None, "unreadable")
    absent = tmp_path / "tap.parquet"
    assert_error(error_of(absent, "tap"), absent, None, None, "unreadable")


def test_broken_parquet_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "swipe.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    assert error_of(path).rule == "unreadable"


def test_strict_mode_reports_the_first_bad_row_in_file_order(tmp_path: Path) -> None:
    off_screen = "u1,1100,tap,home,500,20,,,,,,400,800"
    not_a_number = "u1,abc,open_page,home,,,,,,,,400,800"
    path = swipe_csv(tmp_path, OPEN, off_screen, not_a_number)
    assert_error(error_of(path), path, 3, "x", "off_screen")


def test_first_broken_rule_of_a_row_is_reported(tmp_path: Path) -> None:
    """Columns are judged in schema order, so a bad ts wins over a bad type in the same row."""
    path = swipe_csv(tmp_path, "u1,x,scroll,home,,,,,,,,400,800")
    assert_error(error_of(path), path, 2, "ts", "not_a_number")


# --------------------------------------------------------------------------- line semantics


def test_csv_lines_are_physical_lines(tmp_path: Path) -> None:
    """A quoted field spanning lines and a blank line both push later rows down the file."""
    two_lines = 'u1,1001,open_page,"two\nlines",,,,,,,,400,800'
    path = swipe_csv(tmp_path, OPEN, two_lines, "", "u1,-1,tap,home,1,1,,,,,,400,800")
    assert_error(error_of(path), path, 6, "ts", "negative")


def test_csv_lines_with_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "swipe.csv"
    lines = [SWIPE_HEADER, OPEN, '"u,2",1,tap,home,1,1,,,,,,400,800', "u1,-1,tap,home,1,1,,,,,,400,800"]
    path.write_bytes("\r\n".join(lines).encode())
    assert_error(error_of(path), path, 4, "ts", "negative")


def test_blank_csv_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, OPEN, "", TAP, "")
    result = read_view(path, "swipe")
    assert result.frame.height == 2
    assert result.report.blank_rows == 2
    assert result.report.rows_read == 2


def test_jsonl_line_counts_blank_lines(tmp_path: Path) -> None:
    good, bad = swipe_rows({}, {"ts": 2000, "type": "scroll"})
    path = tmp_path / "swipe.jsonl"
    path.write_text(json.dumps(good) + "\n\n   \n" + json.dumps(bad) + "\n")
    assert_error(error_of(path), path, 4, "type", "unknown_value")


def test_jsonl_broken_line_is_unreadable_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "swipe.ndjson"
    path.write_text(json.dumps(swipe_rows({})[0]) + "\n\n{not json}\n")
    assert_error(error_of(path), path, 3, None, "unreadable")


def test_json_array_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "swipe.json"
    path.write_text(json.dumps(swipe_rows({})))
    err = error_of(path)
    assert err.rule == "unreadable" and "JSON Lines" in str(err)


def test_jsonl_absent_key_is_a_missing_column_but_null_is_a_missing_value(tmp_path: Path) -> None:
    rows = swipe_rows({}, {"ts": 2000})
    absent = tmp_path / "a" / "swipe.jsonl"
    absent.parent.mkdir()
    without_page = [{k: v for k, v in r.items() if k != "page"} for r in rows]
    absent.write_text("".join(json.dumps(r) + "\n" for r in without_page))
    assert_error(error_of(absent), absent, None, "page", "missing_column")
    null = tmp_path / "swipe.jsonl"
    null.write_text("".join(json.dumps({**r, "page": None}) + "\n" for r in rows))
    assert_error(error_of(null), null, 1, "page", "missing_value")


def test_jsonl_fractional_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "swipe.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in swipe_rows({}, {"ts": 1500.5})))
    assert_error(error_of(path), path, 2, "ts", "not_a_number")


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    tap_below_screen = {"ts": 1200, "type": "tap", "x": 10.0, "y": 900.0}
    frame = pl.DataFrame(swipe_rows({}, {"ts": 1100}, tap_below_screen))
    path = write_view(frame, tmp_path / "swipe.parquet")
    err = error_of(path)
    assert_error(err, path, 3, "y", "off_screen")
    assert "row 3" in str(err) and "line" not in str(err)


def test_parquet_negative_integer_timestamp(tmp_path: Path) -> None:
    frame = pl.DataFrame(swipe_rows({}, {"ts": -1}))
    path = write_view(frame, tmp_path / "swipe.parquet")
    assert_error(error_of(path), path, 2, "ts", "negative")


def test_parquet_fractional_timestamp(tmp_path: Path) -> None:
    frame = pl.DataFrame(swipe_rows({"ts": 1000.0}, {"ts": 1000.25}))
    path = write_view(frame, tmp_path / "swipe.parquet")
    assert_error(error_of(path), path, 2, "ts", "not_a_number")


# --------------------------------------------------------------------------- lenient mode


def test_lenient_mode_drops_bad_rows_and_counts_them_by_rule(tmp_path: Path) -> None:
    path = swipe_csv(
        tmp_path, OPEN, "u1,-1,open_page,home,,,,,,,,400,800", TAP,
        "u1,1300,scroll,home,,,,,,,,400,800", "u1,1400,swipe,home,,,,,,,,400,800",
        "u1,1500,tap,home,500,1,,,,,,400,800", "u1,-7,open_page,home,,,,,,,,400,800", SWIPE,
    )  # fmt: skip
    result = read_view(path, "swipe", lenient=True)
    assert isinstance(result, ReadResult)
    assert result.frame["ts"].to_list() == [1000, 1100, 1200]
    report = result.report
    assert (report.rows_read, report.rows_kept) == (8, 3)
    assert report.dropped == {"negative": 2, "unknown_value": 1, "missing_required_for_type": 1,
                              "off_screen": 1}  # fmt: skip
    assert report.examples[0] == (
        f"{path}, line 3, column 'ts': negative timestamp (-1); timestamps must be >= 0"
    )
    assert len(report.examples) == 5
    text = str(report)
    assert "read 8 rows, kept 3" in text and "negative: 2" in text


def test_lenient_mode_on_a_clean_file_reports_nothing_dropped(tmp_path: Path) -> None:
    report = read_view(swipe_csv(tmp_path, OPEN, TAP, SWIPE), "swipe", lenient=True).report
    assert (report.rows_read, report.rows_kept, report.dropped, report.examples) == (3, 3, {}, [])


# --------------------------------------------------------------------------- output frame


def test_output_has_schema_columns_in_order_with_canonical_dtypes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "swipe.csv", "extra," + SWIPE_HEADER, "zz," + OPEN, "zz," + SWIPE)
    frame = read_view(path, "swipe").frame
    assert tuple(frame.columns) == tuple(r.name for r in SCHEMAS["swipe"])
    expected = {"int": pl.Int64, "float": pl.Float64, "str": pl.String}
    assert list(frame.schema.values()) == [expected[r.dtype] for r in SCHEMAS["swipe"]]
    assert frame["x"].null_count() == 2  # nullable columns keep nulls


def test_unsorted_timestamps_are_sorted_per_user_stably(tmp_path: Path) -> None:
    path = swipe_csv(
        tmp_path, "b,300,open_page,p1,,,,,,,,400,800", "a,200,open_page,p2,,,,,,,,400,800",
        "b,100,open_page,p3,,,,,,,,400,800", "a,200,open_page,p4,,,,,,,,400,800",
        "a,50,open_page,p5,,,,,,,,400,800", "a,200,open_page,p6,,,,,,,,400,800",
    )  # fmt: skip
    frame = read_view(path, "swipe").frame
    assert frame.select("user_id", "ts", "page").rows() == [
        ("a", 50, "p5"), ("a", 200, "p2"), ("a", 200, "p4"), ("a", 200, "p6"),
        ("b", 100, "p3"), ("b", 300, "p1"),
    ]  # fmt: skip


def test_integer_user_ids_become_strings(tmp_path: Path) -> None:
    csv_path = swipe_csv(
        tmp_path, "007,1,open_page,home,,,,,,,,400,800", "12,2,open_page,home,,,,,,,,400,800"
    )
    assert read_view(csv_path, "swipe").frame["user_id"].to_list() == ["007", "12"]
    frame = pl.DataFrame(swipe_rows({"user_id": 12}, {"user_id": 7}))
    for name in ("swipe.parquet", "swipe.jsonl"):
        result = read_view(write_view(frame, tmp_path / name), "swipe").frame
        assert result["user_id"].dtype == pl.String
        assert result["user_id"].to_list() == ["12", "7"]


def test_missing_nullable_column_is_filled_with_nulls(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tap.csv", "user_id,ts,event,page", "u1,1,page,home", "u1,2,page,cart")
    frame = read_view(path, "tap").frame
    assert frame.columns == ["user_id", "ts", "event", "page", "button"]
    assert frame["button"].dtype == pl.String and frame["button"].null_count() == 2


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "swipe.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join([SWIPE_HEADER, OPEN, TAP, "u1,1300,tap,home,1,-2,,,,,,400,800"]) + "\n")
    assert_error(error_of(path), path, 4, "y", "negative")
    assert read_view(path, "swipe", lenient=True).frame.height == 2


def test_whitespace_around_numbers_is_tolerated(tmp_path: Path) -> None:
    path = swipe_csv(tmp_path, "u1, 1000 ,tap,home, 10 ,20,,,,,,400,800")
    assert read_view(path, "swipe").frame.row(0)[:5] == ("u1", 1000, "tap", "home", 10.0)


def test_header_only_file_gives_an_empty_typed_frame(tmp_path: Path) -> None:
    frame = read_view(swipe_csv(tmp_path), "swipe").frame
    assert frame.height == 0 and frame.schema["ts"] == pl.Int64


def test_unknown_view_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DipnValidationError, match="unknown view"):
        read_view(swipe_csv(tmp_path, OPEN), "clicks")


@pytest.mark.parametrize(
    "name", ["swipe.csv", "swipe.csv.gz", "swipe.jsonl", "swipe.ndjson", "swipe.parquet"]
)
def test_write_then_read_gives_the_same_frame(tmp_path: Path, name: str) -> None:
    frame = pl.DataFrame(
        swipe_rows(
            {"user_id": "b", "ts": 5},
            {"user_id": "a", "ts": 7, "type": "tap", "page": "list, \"quoted\"", "x": 0.1, "y": 799.99},
            {"user_id": "a", "ts": 9, "type": "swipe", "x0": 1.5, "y0": 2.0, "x1": 3.25, "y1": 4.0,
             "duration_ms": 123.456, "screen_w": 1080.0, "screen_h": 2400.0},
        )
    ).cast({"ts": pl.Int64})  # fmt: skip
    canonical = read_view(write_view(frame, tmp_path / "a" / name), "swipe").frame
    again = read_view(write_view(canonical, tmp_path / "b" / name), "swipe").frame
    assert canonical.equals(again)
    assert canonical.equals(frame.sort("user_id", "ts"))


# --------------------------------------------------------------------------- datasets


def test_read_dataset_finds_views_by_name_in_any_format(tmp_path: Path) -> None:
    swipe_csv(tmp_path, OPEN)
    tap = pl.DataFrame({"user_id": [1], "ts": [5], "event": ["page"], "page": ["home"]})
    write_view(tap, tmp_path / "tap.parquet")
    (tmp_path / "notes.txt").write_text("not a view")
    results = read_dataset(tmp_path)
    assert sorted(results) == ["swipe", "tap"]
    assert results["tap"].frame["user_id"].to_list() == ["1"]
    assert sorted(read_dataset(tmp_path, views=["tap"])) == ["tap"]


def test_read_dataset_refuses_two_files_for_one_view(tmp_path: Path) -> None:
    swipe_csv(tmp_path, OPEN)
    write_view(read_view(tmp_path / "swipe.csv", "swipe").frame, tmp_path / "swipe.jsonl")
    with pytest.raises(RawDataError, match="swipe.csv and swipe.jsonl") as info:
        read_dataset(tmp_path)
    assert info.value.rule == "ambiguous_view"


def test_read_dataset_refuses_a_directory_without_views(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(RawDataError) as info:
        read_dataset(tmp_path)
    assert info.value.rule == "no_views"


def test_read_dataset_lenient_passes_through(tmp_path: Path) -> None:
    swipe_csv(tmp_path, OPEN, "u1,-1,open_page,home,,,,,,,,400,800")
    with pytest.raises(RawDataError):
        read_dataset(tmp_path)
    assert read_dataset(tmp_path, lenient=True)["swipe"].report.dropped == {"negative": 1}


# --------------------------------------------------------------------------- other views, formats


def test_profile_counts_must_not_be_negative(tmp_path: Path) -> None:
    header = "user_id,age_level,gender,buyer_star,tm_level,vip_level,phone_price_level"
    rows = ("b,1,0,2,3,0,1", "a,1,1,2,3,0,1", "c,1,-1,2,3,0,1")
    path = write_csv(tmp_path / "profile.csv", header, *rows)
    err = error_of(path, "profile")
    assert str(err) == f"{path}, line 4, column 'gender': negative count (-1); counts must be >= 0"
    assert read_view(path, "profile", lenient=True).frame["user_id"].to_list() == ["a", "b"]


def test_parquet_datetime_timestamps_become_epoch_milliseconds(tmp_path: Path) -> None:
    ts = [1_700_000_000_123]
    frame = pl.DataFrame({"user_id": ["u"], "ts": ts, "event": ["page"], "page": ["home"]})
    frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("ms")))
    result = read_view(write_view(frame, tmp_path / "tap.parquet"), "tap").frame
    assert result["ts"].to_list() == [1_700_000_000_123]


def test_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "swipe.xlsx"
    path.write_text("x")
    assert error_of(path).rule == "unsupported_format"


# --------------------------------------------------------------------------- property


BAD_ROWS = {
    "negative": "u{u},-3,open_page,home,,,,,,,,400,800",
    "not_a_number": "u{u},soon,open_page,home,,,,,,,,400,800",
    "unknown_value": "u{u},{t},scroll,home,,,,,,,,400,800",
    "missing_required_for_type": "u{u},{t},swipe,home,,,1,2,3,,40,400,800",
    "off_screen": "u{u},{t},tap,home,401,5,,,,,,400,800",
    "below_minimum": "u{u},{t},open_page,home,,,,,,,,400,0",
}
GOOD_ROWS = ("u{u},{t},open_page,home,,,,,,,,400,800", "u{u},{t},tap,home,1.5,2,,,,,,400,800",
             "u{u},{t},swipe,home,,,1,2,3,4,40,400,800")  # fmt: skip


ROW = st.tuples(st.sampled_from([*GOOD_ROWS, *BAD_ROWS]), st.integers(0, 3), st.integers(0, 10**12))


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=30))
def test_strict_and_lenient_agree_on_which_rows_are_bad(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, int, int]]
) -> None:
    """Property: lenient drops exactly the bad rows; strict stops at the first of them."""
    path = tmp_path_factory.mktemp("p") / "swipe.csv"
    lines = [(BAD_ROWS.get(kind, kind)).format(u=u, t=t) for kind, u, t in rows]
    write_csv(path, SWIPE_HEADER, *lines)
    bad = [(i + 2, kind) for i, (kind, _, _) in enumerate(rows) if kind in BAD_ROWS]
    result = read_view(path, "swipe", lenient=True)
    assert result.report.rows_kept == len(rows) - len(bad)
    assert sum(result.report.dropped.values()) == len(bad)
    keys = result.frame.select("user_id", "ts").rows()
    assert keys == sorted(keys)
    if bad:
        err = error_of(path)
        assert (err.line, err.rule) == bad[0]
    else:
        assert read_view(path, "swipe").frame.equals(result.frame)


def test_a_nul_in_text_is_a_malformed_row_and_never_reaches_a_vocabulary(tmp_path: Path) -> None:
    """Vocabularies ship to phones, where a NUL ends a C string (issue 17, item 15)."""
    from dipn.features import FeatureManifest, Vocabulary

    path = swipe_csv(tmp_path, OPEN, "u1,1100,tap,ho\0me,10,20,,,,,,400,800")
    assert_error(error_of(path), path, 3, "page", "nul_character")
    lenient = read_view(path, "swipe", lenient=True)
    assert lenient.report.dropped == {"nul_character": 1} and lenient.frame["page"].to_list() == ["home"]
    with pytest.raises(DipnValidationError, match="without NUL"):
        Vocabulary.build(["home", "ho\0me"], 10)
    manifest = FeatureManifest().to_dict() | {"vocabularies": {"swipe.page": ["home", "ho\0me"]}}
    with pytest.raises(DipnValidationError, match="without NUL"):  # a features.json written by hand
        FeatureManifest.from_dict(manifest)
