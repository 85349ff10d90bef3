"""Importers of public logs: each published layout, its mapping, its counts, and build-samples on top.

Every test writes a small file in the exact published layout (no header for Taobao and YooChoose,
the published headers for REES46 and Retailrocket) and checks what lands in browse.parquet,
history.parquet and meta.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dipn.commands import import_logs as import_command
from dipn.samples.build import BuildConfig, build_samples
from dipn.logs.importers import FORMATS, PAGE_LOG, STAY_CAP_MS, ImportConfig, import_logs
from dipn.logs.readers import RawDataError, read_dataset
from dipn.errors import DipnValidationError

DAY_S = 86_400
CHINA_DAY0 = 1_511_539_200  # 2017-11-25 00:00 UTC+8, in unix seconds
CHINA_END = CHINA_DAY0 + 9 * DAY_S  # 2017-12-04 00:00 UTC+8: the first second after the window

REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
RETAILROCKET_HEADER = "timestamp,visitorid,event,itemid,transactionid"


def write(path: Path, *lines: str, newline: str = "\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def run(fmt: str, paths: list[Path], out: Path, **config) -> dict:
    return import_logs(fmt, paths, out, ImportConfig(progress=False, **config)).meta


def browse_of(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "browse.parquet").sort("user_id", "ts", maintain_order=True)


def history_of(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "history.parquet").sort("user_id", "as_of_ts")


def taobao(day: int, second: int) -> int:
    """Unix seconds of ``second`` seconds after 00:00 (UTC+8) of window day ``day`` (0 = 11-25)."""
    return CHINA_DAY0 + day * DAY_S + second


def error_of(fmt: str, paths: list[Path], out: Path, **config) -> RawDataError:
    with pytest.raises(RawDataError) as info:
        run(fmt, paths, out, **config)
    return info.value


def assert_error(err: RawDataError, path: Path, line: int | None, column: str | None, rule: str) -> None:
    assert (err.path, err.line, err.column, err.rule) == (path, line, column, rule), str(err)
    assert str(err).startswith(f"{path}, line {line}")


# --------------------------------------------------------------------------- Taobao UserBehavior


def test_taobao_behaviors_map_to_browse_actions_with_category_as_leaf(tmp_path: Path) -> None:
    t = taobao(0, 3600)
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,100,7,pv,{t}",
        f"1,101,7,fav,{t + 40}",
        f"1,101,7,cart,{t + 100}",
        f"1,101,7,buy,{t + 200}",
    )
    meta = run("taobao-userbehavior", [path], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["action"].to_list() == ["browse", "collect", "cart", "purchase"]
    assert got["ts"].to_list() == [t * 1000, (t + 40) * 1000, (t + 100) * 1000, (t + 200) * 1000]
    assert got["leaf_category"].to_list() == ["7"] * 4
    assert got["top_category"].null_count() == 4  # UserBehavior has no category tree
    assert got["page"].to_list() == [PAGE_LOG] * 4
    assert meta["rows"]["actions"] == {"browse": 1, "search": 0, "collect": 1, "cart": 1, "purchase": 1}
    assert meta["utc_offset_minutes"] == 480
    assert meta["sources"][0]["rows_read"] == meta["sources"][0]["rows_kept"] == 4


def test_stay_time_is_the_gap_to_the_users_next_event_capped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,1,7,pv,{taobao(0, 100)}",  # next event 40 s later
        f"1,2,7,cart,{taobao(0, 140)}",  # not a browse: no stay
        f"1,3,7,pv,{taobao(0, 200)}",  # next event 2 h later: capped
        f"1,4,7,pv,{taobao(0, 7400)}",  # the user's last event: unknown
        f"2,5,7,pv,{taobao(0, 150)}",  # another user's events do not end a stay
        f"2,5,7,pv,{taobao(0, 150)}",  # duplicate (dropped): no zero stay
        f"2,6,7,pv,{taobao(0, 151)}",
    )
    run("taobao-userbehavior", [path], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["stay_ms"].to_list() == [40_000.0, None, float(STAY_CAP_MS), None, 1000.0, None]
    run("taobao-userbehavior", [path], tmp_path / "short", stay_cap_ms=60_000)
    assert browse_of(tmp_path / "short")["stay_ms"][2] == 60_000.0


def test_taobao_window_is_the_nine_china_days_and_outside_rows_are_counted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,1,1,pv,{CHINA_DAY0 - 1}",  # 2017-11-24 23:59:59 China (15:59:59 UTC): out
        f"1,1,1,pv,{CHINA_DAY0}",  # 2017-11-25 00:00:00 China (11-24 16:00 UTC): in
        f"1,1,1,pv,{CHINA_END - 1}",  # 2017-12-03 23:59:59 China: in
        f"1,1,1,pv,{CHINA_END}",  # 2017-12-04 00:00:00 China (12-03 16:00 UTC): out
        "1,1,1,pv,0",  # 1970: out
    )
    meta = run("taobao-userbehavior", [path], tmp_path / "out")
    assert browse_of(tmp_path / "out")["ts"].to_list() == [CHINA_DAY0 * 1000, (CHINA_END - 1) * 1000]
    assert meta["dropped"] == {"out_of_window": 3}
    assert (meta["start_ms"], meta["end_ms"]) == (CHINA_DAY0 * 1000, CHINA_END * 1000)
    assert meta["cut_end_ms"] == (CHINA_END - DAY_S) * 1000
    assert meta["window"]["start"] == "2017-11-25T00:00:00+08:00"
    assert meta["window"]["end"] == "2017-12-04T00:00:00+08:00"
    assert meta["window"]["source"] == "published"


def test_history_snapshots_are_taken_at_china_midnight(tmp_path: Path) -> None:
    cart = taobao(1, 1800)  # 11-26 00:30 in China, still 11-25 (16:30) in UTC
    path = write(tmp_path / "UserBehavior.csv", f"1,1,1,cart,{cart}", f"1,1,1,pv,{taobao(2, 3600)}")
    run("taobao-userbehavior", [path], tmp_path / "china")
    china = history_of(tmp_path / "china")
    # the cart is on 11-26 China time: seen from 11-27 00:00 on; the days after each active day
    assert china["as_of_ts"].to_list() == [taobao(2, 0) * 1000, taobao(3, 0) * 1000]
    assert china["cart_7d"].to_list() == [1, 1]
    run("taobao-userbehavior", [path], tmp_path / "utc", utc_offset_minutes=0)
    utc = history_of(tmp_path / "utc")
    utc_midnight_1125 = (CHINA_DAY0 + 8 * 3600) * 1000  # the cart is on 11-25 in UTC
    # ... and in UTC the window's last day is 12-03, when the cart leaves the 7 days before it
    assert utc["as_of_ts"].to_list() == [utc_midnight_1125 + d * DAY_S * 1000 for d in (1, 2, 8)]
    assert utc["cart_7d"].to_list() == [1, 1, 0]


def test_history_counts_the_seven_days_before_each_snapshot_taken_where_a_count_changes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,1,1,buy,{taobao(0, 10)}",
        f"1,1,1,fav,{taobao(0, 20)}",
        f"1,1,1,cart,{taobao(6, 10)}",
        f"1,1,1,pv,{taobao(7, 10)}",
        f"1,1,1,pv,{taobao(8, 10)}",
        f"2,1,1,pv,{taobao(8, 10)}",
    )
    run("taobao-userbehavior", [path], tmp_path / "out")
    h = history_of(tmp_path / "out")
    one = h.filter(pl.col("user_id") == "1")
    # days 1, 7 (the days after active days 0 and 6) and 8 (day 7's events enter, day 0's leave)
    assert one["as_of_ts"].to_list() == [taobao(d, 0) * 1000 for d in (1, 7, 8)]
    assert one["purchase_7d"].to_list() == [1, 1, 0]  # day 0 leaves the 7 days before day 8
    assert one["purchase_365d"].to_list() == [1, 1, 1]
    assert one["collect_7d"].to_list() == [1, 1, 0]
    assert one["cart_7d"].to_list() == [0, 1, 1]
    # user 2 is first seen on the last day: no snapshot, a cut reads none (padding), as for
    # a cut of user 1 on day 0
    assert h.filter(pl.col("user_id") == "2").height == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 8 * DAY_S + DAY_S - 1), st.sampled_from(["pv", "cart", "fav", "buy"])),
                min_size=1, max_size=25), st.integers(0, 9 * DAY_S - 1))  # fmt: skip
def test_the_snapshot_a_cut_reads_is_the_same_when_the_log_ends_at_the_cut(tmp_path: Path, events, cut: int) -> None:
    """What a phone knows at t: the history a cut reads does not depend on events after it."""
    rows = sorted(events)
    path = write(tmp_path / "all.csv", *[f"1,1,1,{a},{CHINA_DAY0 + t}" for t, a in rows])
    run("taobao-userbehavior", [path], tmp_path / "all")
    read = _as_of(history_of(tmp_path / "all"), (CHINA_DAY0 + cut) * 1000)
    known = [(t, a) for t, a in rows if t <= cut]
    if known:
        path = write(tmp_path / "known.csv", *[f"1,1,1,{a},{CHINA_DAY0 + t}" for t, a in known])
        run("taobao-userbehavior", [path], tmp_path / "known")
        assert _as_of(history_of(tmp_path / "known"), (CHINA_DAY0 + cut) * 1000) == read
    else:
        assert read is None  # no event before the cut: no snapshot either


def _as_of(history: pl.DataFrame, ts_ms: int) -> dict | None:
    """The snapshot ``build-samples`` gives a cut at ts_ms: the latest at or before it."""
    before = history.filter(pl.col("as_of_ts") <= ts_ms).sort("as_of_ts")
    return None if before.height == 0 else {k: v for k, v in before.row(-1, named=True).items() if k != "as_of_ts"}


def test_exact_duplicate_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    t = taobao(1, 0)
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,10,7,pv,{t}",
        f"1,11,7,pv,{t}",  # same user and time, another item: not a duplicate
        f"1,10,7,pv,{t}",
        f"1,10,7,pv,{t}",
        f"2,10,7,pv,{t}",
    )
    meta = run("taobao-userbehavior", [path], tmp_path / "out")
    assert browse_of(tmp_path / "out").height == 3
    assert meta["dropped"] == {"duplicate": 2}
    assert meta["sources"][0]["rows_kept"] == 3


def test_strict_mode_names_file_line_column_and_rule(tmp_path: Path) -> None:
    good = f"1,2,3,pv,{taobao(0, 5)}"
    cases = {
        "unknown_value": (f"1,2,3,click,{taobao(0, 5)}", "behavior_type",
                          "unknown behavior_type 'click'; expected one of pv, fav, cart, buy"),
        "not_a_number": ("1,2,3,pv,abc", "timestamp", "'abc' is not a whole number; 'timestamp' must be an integer"),
        "negative": ("1,2,3,pv,-5", "timestamp", "negative timestamp (-5); 'timestamp' must be >= 0"),
        "missing_value": (f",2,3,pv,{taobao(0, 5)}", "user_id", "missing value; 'user_id' is required in every row"),
        "field_count": ("1,2,3,pv", None, "expected 5 comma-separated fields (user_id, item_id, category_id, "
                        "behavior_type, timestamp), found 4; fields of this layout are never quoted"),
    }  # fmt: skip
    for rule, (bad, column, detail) in cases.items():
        path = write(tmp_path / f"{rule}.csv", good, "", bad, good)  # line 2 is blank
        err = error_of("taobao-userbehavior", [path], tmp_path / rule)
        assert_error(err, path, 3, column, rule)
        where = f"{path}, line 3" + (f", column {column!r}" if column else "")
        assert str(err) == f"{where}: {detail}"
        assert not (tmp_path / rule / "browse.parquet").exists()
        assert not (tmp_path / rule / ".dipn-import").exists()
    too_many = write(tmp_path / "wide.csv", good, f"1,2,3,pv,{taobao(0, 5)},9")
    assert_error(error_of("taobao-userbehavior", [too_many], tmp_path / "wide"), too_many, 2, None, "field_count")


def test_a_header_line_in_a_headerless_layout_is_pointed_out(tmp_path: Path) -> None:
    path = write(tmp_path / "UserBehavior.csv", "user_id,item_id,category_id,behavior_type,timestamp", "1,2,3,pv,5")
    err = error_of("taobao-userbehavior", [path], tmp_path / "out")
    assert_error(err, path, 1, "behavior_type", "unknown_value")
    assert str(err).endswith("; this layout has no header line")


def test_lenient_mode_drops_and_counts_malformed_rows_by_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path / "UserBehavior.csv",
        f"1,2,3,pv,{taobao(0, 5)}",
        f"1,2,3,click,{taobao(0, 5)}",
        "1,2,3,pv,abc",
        "",
        "1,2,3,pv",
        f"1,2,3,pv,{taobao(0, 5)},extra",
        f",2,3,pv,{taobao(0, 5)}",
        "1,2,3,pv,-5",
        f"1,2,3,buy,{taobao(0, 9)}",
    )
    meta = run("taobao-userbehavior", [path], tmp_path / "out", lenient=True)
    assert browse_of(tmp_path / "out")["action"].to_list() == ["browse", "purchase"]
    expected = {"field_count": 2, "missing_value": 1, "negative": 1, "not_a_number": 1, "unknown_value": 1}
    assert meta["dropped"] == expected
    source = meta["sources"][0]
    assert (source["rows_read"], source["rows_kept"], source["blank_lines"]) == (8, 2, 1)
    assert len(source["examples"]) == 5
    assert source["examples"][0] == (f"{path}, line 2, column 'behavior_type': unknown behavior_type "
                                     "'click'; expected one of pv, fav, cart, buy")  # fmt: skip
    assert meta["lenient"] is True


def test_chunk_and_partition_sizes_change_neither_output_nor_line_numbers(tmp_path: Path) -> None:
    lines = [f"{u},{i},{i % 5},{('pv', 'cart', 'fav', 'buy')[i % 4]},{taobao(i % 9, 60 * u + i)}"
             for u in range(1, 13) for i in range(30)]  # fmt: skip
    lines += lines[:7]  # duplicates, far from their originals
    path = write(tmp_path / "UserBehavior.csv", *lines)
    whole = run("taobao-userbehavior", [path], tmp_path / "whole")
    tiny = run("taobao-userbehavior", [path], tmp_path / "tiny", chunk_bytes=64, partition_bytes=300)
    assert tiny["partitions"] > 5 and whole["partitions"] == 1
    assert tiny["dropped"] == whole["dropped"] == {"duplicate": 7}
    assert browse_of(tmp_path / "tiny").equals(browse_of(tmp_path / "whole"))
    assert history_of(tmp_path / "tiny").equals(history_of(tmp_path / "whole"))
    late = write(tmp_path / "late.csv", *lines[:300], "1,2,3,pv,x", *lines[300:])
    assert_error(error_of("taobao-userbehavior", [late], tmp_path / "late", chunk_bytes=64), late, 301,
                 "timestamp", "not_a_number")  # fmt: skip


def test_gzip_and_crlf_files_import_like_the_plain_file(tmp_path: Path) -> None:
    lines = [f"1,1,1,pv,{taobao(0, 10)}", f"1,1,1,pv,{taobao(0, 10)}", f"1,2,1,cart,{taobao(0, 70)}"]
    plain = write(tmp_path / "plain.csv", *lines)
    crlf = write(tmp_path / "crlf.csv", *lines, newline="\r\n")
    zipped = tmp_path / "UserBehavior.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    metas = {p.name: run("taobao-userbehavior", [p], tmp_path / f"out-{p.name}") for p in (plain, crlf, zipped)}
    for name, meta in metas.items():
        assert browse_of(tmp_path / f"out-{name}").equals(browse_of(tmp_path / "out-plain.csv")), name
        assert meta["dropped"] == {"duplicate": 1}, name


def test_bytes_that_are_not_utf8_neither_stop_the_import_nor_shift_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_bytes(f"1,\xff\xfe,7,pv,{taobao(0, 1)}\n1,2,\xff,pv,{taobao(0, 2)}\n1,2,3,pv,x\n".encode("latin-1"))
    assert_error(error_of("taobao-userbehavior", [path], tmp_path / "out"), path, 3, "timestamp", "not_a_number")
    run("taobao-userbehavior", [path], tmp_path / "out", lenient=True)
    assert browse_of(tmp_path / "out")["leaf_category"].to_list() == ["7", "\ufffd"]


# --------------------------------------------------------------------------- REES46


def test_rees46_months_map_views_carts_purchases_and_top_category(tmp_path: Path) -> None:
    october = write(
        tmp_path / "2019-Oct.csv",
        REES46_HEADER,
        "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3",
        "2019-10-01 00:00:30 UTC,cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,541312140,72d76fde-8bb3",
        "2019-10-01 00:01:00 UTC,remove_from_cart,3900821,2053013552326770905,appliances.environment.water_heater,aqua,33.20,541312140,72d76fde-8bb3",
        "2019-10-01 00:02:00 UTC,purchase,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,541312140,72d76fde-8bb3",
    )  # fmt: skip
    november = write(
        tmp_path / "2019-Nov.csv",
        REES46_HEADER,
        "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3",
        "2019-11-02 10:00:00 UTC,view,1004237,2053013555631882655,electronics.smartphone,apple,1081.98,9,",
    )  # fmt: skip
    meta = run("rees46", [october, november], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["user_id"].to_list() == ["541312140"] * 3 + ["9"]
    assert got["action"].to_list() == ["browse", "cart", "purchase", "browse"]
    assert got["leaf_category"].to_list() == ["2103807459595387724", "2053013552326770905",
                                              "2053013555631882655", "2053013555631882655"]  # fmt: skip
    assert got["top_category"].to_list() == [None, "appliances", "electronics", "electronics"]
    assert got["stay_ms"][0] == 30_000.0  # to the cart, not to the dropped remove_from_cart
    assert meta["dropped"] == {"duplicate": 1, "unmapped_event": 1}
    assert [s["dropped"] for s in meta["sources"]] == [{"unmapped_event": 1}, {"duplicate": 1}]
    first, last = 1_569_888_000_000, 1_572_688_800_000  # 2019-10-01 00:00 and 2019-11-02 10:00 UTC
    assert (meta["start_ms"], meta["end_ms"]) == (first, last + 1)
    assert meta["cut_end_ms"] == last + 1 - DAY_S * 1000
    assert meta["utc_offset_minutes"] == 0


def test_rees46_header_must_hold_the_published_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "2019-Oct.csv", REES46_HEADER.replace(",user_session", ""), "x")
    err = error_of("rees46", [path], tmp_path / "out")
    assert_error(err, path, 1, "user_session", "missing_column")


def test_rees46_event_time_must_be_the_published_utc_text(tmp_path: Path) -> None:
    path = write(tmp_path / "2019-Oct.csv", REES46_HEADER,
                 "2019-10-01T00:00:00Z,view,1,2,,,1.0,5,s")  # fmt: skip
    err = error_of("rees46", [path], tmp_path / "out")
    assert_error(err, path, 2, "event_time", "not_a_timestamp")
    assert "like '2019-10-01 00:00:00 UTC'" in str(err)
    early = write(tmp_path / "early.csv", REES46_HEADER, "1969-12-31 23:59:59 UTC,view,1,2,,,1.0,5,s")
    assert_error(error_of("rees46", [early], tmp_path / "early"), early, 2, "event_time", "negative")


# --------------------------------------------------------------------------- Retailrocket


def retailrocket_events(tmp_path: Path) -> Path:
    return write(
        tmp_path / "events.csv",
        RETAILROCKET_HEADER,
        "1432999999000,7,view,1,",  # before item 1's first snapshot: its earliest category
        "1433221999827,7,addtocart,1,",
        "1433222000000,7,transaction,1,4000",  # item 1 has moved to category 11 by now
        "1433222100000,7,view,3,",
        "1433222200000,8,view,2,",  # item 2 has no categoryid property
    )


def test_retailrocket_without_item_properties_has_no_categories(tmp_path: Path) -> None:
    meta = run("retailrocket", [retailrocket_events(tmp_path)], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["action"].to_list() == ["browse", "cart", "purchase", "browse", "browse"]
    assert got["user_id"].to_list() == ["7", "7", "7", "7", "8"]
    assert got["ts"][0] == 1_432_999_999_000  # already milliseconds
    assert got["leaf_category"].null_count() == got["top_category"].null_count() == 5
    assert "null" in meta["mapping"]["leaf_category"]


def test_retailrocket_categories_come_from_properties_at_event_time_and_the_tree(tmp_path: Path) -> None:
    properties = write(
        tmp_path / "item_properties_part1.csv",
        "timestamp,itemid,property,value",
        "1433000000000,1,categoryid,10",
        "1433000000000,1,790,n5000.000",
        "1433000000000,2,available,1",
        "1433000000000,4,888,1 2,3 4",  # free text with a comma
        "1433222000000,1,categoryid,11",
    )
    more = write(tmp_path / "item_properties_part2.csv", "timestamp,itemid,property,value",
                 "1433000000000,3,categoryid,12")  # fmt: skip
    tree = write(tmp_path / "category_tree.csv", "categoryid,parentid", "10,5", "5,", "11,", "12,10")
    meta = run("retailrocket", [retailrocket_events(tmp_path), properties, more, tree], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["leaf_category"].to_list() == ["10", "10", "11", "12", None]
    assert got["top_category"].to_list() == ["5", "5", "11", "5", None]
    assert [s["role"] for s in meta["sources"]] == ["events", "item_properties", "item_properties", "category_tree"]
    assert meta["sources"][1]["rows_kept"] == 5


def test_a_file_of_no_known_retailrocket_layout_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "other.csv", "a,b,c", "1,2,3")
    err = error_of("retailrocket", [path], tmp_path / "out")
    assert (err.rule, err.line) == ("unknown_file", 1)


# --------------------------------------------------------------------------- YooChoose


def test_yoochoose_sessions_click_contexts_and_buys(tmp_path: Path) -> None:
    clicks = write(
        tmp_path / "yoochoose-clicks.dat",
        "1,2014-04-07T10:51:09.277Z,214536502,0",
        "1,2014-04-07T10:54:09.868Z,214536500,S",
        "1,2014-04-07T10:54:46.998Z,214536506,3",
        "1,2014-04-07T10:57:00.306Z,214577561,2053013555",
        "2,2014-04-07T13:56:37Z,214662742,3",
        "2,2014-04-07T13:57:19.373Z,214662742,2053013555",
        "3,2014-04-07T13:58:00.000Z,214662742,3",
    )
    buys = write(
        tmp_path / "yoochoose-buys.dat",
        "1,2014-04-07T11:00:00.000Z,214536506,12462,1",
        "2,2014-04-07T14:00:00.000Z,214662742,1046,2",
    )
    meta = run("yoochoose", [clicks, buys], tmp_path / "out")
    got = browse_of(tmp_path / "out")
    assert got["user_id"].to_list() == ["1"] * 5 + ["2"] * 3 + ["3"]
    assert got["action"].to_list() == ["browse"] * 4 + ["purchase"] + ["browse"] * 2 + ["purchase", "browse"]
    assert got["page"].to_list()[:5] == [PAGE_LOG, "Page_SpecialOffer", "Page_Category", "Page_Brand", PAGE_LOG]
    assert got["ts"][4] == 1_396_868_400_000  # 2014-04-07 11:00 UTC
    assert got["ts"][5] == 1_396_878_997_000  # 2014-04-07 13:56:37 UTC, written without a fraction
    bought = got.filter(pl.col("action") == "purchase")
    assert bought["top_category"].to_list() == ["3", "3"]  # the item's real category
    assert bought["leaf_category"].to_list() == [None, "2053013555"]  # the item's brand
    assert got["top_category"][1] is None  # clicked only as a special offer
    assert [s["role"] for s in meta["sources"]] == ["clicks", "buys"]


def test_a_file_of_neither_yoochoose_layout_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "other.dat", "1,2014-04-07T10:51:09.277Z,5")
    assert error_of("yoochoose", [path], tmp_path / "out").rule == "unknown_file"


# --------------------------------------------------------------------------- around the import


def test_the_output_directory_is_a_raw_directory_build_samples_reads(tmp_path: Path) -> None:
    lines = []
    for user in range(1, 5):
        for day in range(9):
            for k in range(6):
                behavior = "buy" if (user + day + k) % 7 == 0 else ("cart" if k == 3 else "pv")
                lines.append(f"{user},{k},{10 + k},{behavior},{taobao(day, 3600 * (2 + 3 * k) + user)}")
    path = write(tmp_path / "UserBehavior.csv", *lines)
    meta = run("taobao-userbehavior", [path], tmp_path / "raw")
    assert sorted(read_dataset(tmp_path / "raw")) == ["browse", "history"]
    config = BuildConfig(cuts_per_day=4, seed=1, utc_offset_minutes=meta["utc_offset_minutes"])
    info = build_samples(tmp_path / "raw", tmp_path / "samples", config, progress=False)
    assert info["views_present"] == ["browse", "history"]
    assert info["events"] == {"swipe": 0, "tap": 0, "browse": len(lines)}
    assert (info["window"]["start_ms"], info["window"]["end_ms"]) == (meta["start_ms"], meta["cut_end_ms"])
    assert info["splits"]["train"]["samples"] > 0 and info["splits"]["eval"]["samples"] > 0
    assert info["splits"]["train"]["longterm_rate"] > 0


def test_the_command_line_imports_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="dipn")
    import_command.add_parser(parser.add_subparsers(required=True))
    path = write(tmp_path / "UserBehavior.csv", f"1,1,1,pv,{taobao(0, 1)}", "1,1,1,pv,x")
    args = parser.parse_args(["import", "taobao-userbehavior", str(path), "--out", str(tmp_path / "out"),
                              "--lenient", "--quiet"])  # fmt: skip
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "1 browse events" in printed and "not_a_number 1" in printed
    assert "UTC+480 min, from meta.json" in printed
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["format"] == "taobao-userbehavior" and meta["sources"][0]["path"] == str(path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["browse.parquet", "history.parquet", "meta.json"]


def test_inputs_and_outputs_are_checked_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "UserBehavior.csv", f"1,1,1,pv,{taobao(0, 1)}")
    with pytest.raises(DipnValidationError, match="unknown log format 'taobao'"):
        run("taobao", [path], tmp_path / "out")
    missing = error_of("taobao-userbehavior", [tmp_path / "none.csv"], tmp_path / "out")
    assert (missing.path, missing.rule) == (tmp_path / "none.csv", "unreadable")
    assert str(missing) == f"{tmp_path / 'none.csv'}: no such file"
    busy = tmp_path / "busy"
    busy.mkdir()
    write(busy / "swipe.csv", "user_id")
    with pytest.raises(DipnValidationError, match="already holds swipe.csv"):
        run("taobao-userbehavior", [path], busy)
    with pytest.raises(DipnValidationError, match="no event left"):
        run("taobao-userbehavior", [write(tmp_path / "old.csv", "1,1,1,pv,5")], tmp_path / "empty")


def test_every_format_is_reachable_from_the_command_line() -> None:
    parser = argparse.ArgumentParser(prog="dipn")
    import_command.add_parser(parser.add_subparsers(required=True))
    for name in FORMATS:
        assert parser.parse_args(["import", name, "f", "--out", "o"]).format == name


def test_a_users_fraction_keeps_whole_users_the_same_in_every_run(tmp_path: Path) -> None:
    lines = [f"{user},{k},7,pv,{taobao(day, 600 * k + user)}" for user in range(1, 201) for day in range(3) for k in range(3)]
    path = write(tmp_path / "UserBehavior.csv", *lines)
    full = browse_of(tmp_path / "all") if run("taobao-userbehavior", [path], tmp_path / "all") else None
    meta = run("taobao-userbehavior", [path], tmp_path / "half", users_fraction=0.5)
    again = run("taobao-userbehavior", [path], tmp_path / "again", users_fraction=0.5)
    half = browse_of(tmp_path / "half")
    assert 60 < half["user_id"].n_unique() < 140
    assert half.equals(browse_of(tmp_path / "again")) and meta["dropped"] == again["dropped"]
    per_user = full.group_by("user_id").len().join(half.group_by("user_id").len(), on="user_id", how="inner")
    assert (per_user["len"] == per_user["len_right"]).all()  # a sampled user keeps every event
    assert meta["dropped"]["user_not_sampled"] == len(full) - len(half)
    with pytest.raises(DipnValidationError, match="users_fraction"):
        ImportConfig(users_fraction=0)
