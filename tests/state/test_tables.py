"""The copy-on-write table machinery: views stay frozen, writes copy only what a live view shares."""

import gc

from orchestrator.state.tables import Table


def _table() -> Table:
    table = Table("t", color=lambda row: row["color"] or None)
    table.put("a", {"color": "red"})
    table.put("b", {"color": "red"})
    table.put("c", {"color": "blue"})
    return table


def test_index_follows_rows_through_insert_update_and_delete():
    table = _table()
    assert [r["color"] for r in table.members("color", "red")] == ["red", "red"]
    table.put("a", {"color": "blue"})
    assert list(table.indexes["color"]["red"]) == ["b"]
    assert set(table.indexes["color"]["blue"]) == {"a", "c"}
    table.put("b", {"color": ""})  # a None key leaves the row out of the index
    assert "red" not in table.indexes["color"]  # empty buckets are dropped
    table.delete("c")
    assert list(table.indexes["color"]["blue"]) == ["a"]
    assert table.delete("missing") is None


def test_a_view_never_sees_later_writes():
    table = _table()
    view = table.share()
    table.put("d", {"color": "red"})
    table.put("a", {"color": "green"})
    table.delete("c")
    table.bump(9)
    assert sorted(view.rows) == ["a", "b", "c"]
    assert [r["color"] for r in view.members("color", "red")] == ["red", "red"]
    assert view.members("color", "green") == []
    assert view.index == 0
    assert sorted(table.rows) == ["a", "b", "d"]
    assert set(table.indexes["color"]["red"]) == {"b", "d"}
    assert table.index == 9


def test_views_are_reused_until_a_write_and_dropped_views_cost_no_copy():
    table = _table()
    first = table.share()
    assert table.share() is first
    rows = table.rows
    del first
    gc.collect()
    table.put("d", {"color": "red"})
    assert table.rows is rows  # the only view was gone: written in place
    second = table.share()
    table.put("e", {"color": "red"})
    assert table.rows is not second.rows
    assert "e" not in second.rows


def test_buckets_shared_with_an_older_view_are_copied_even_after_a_newer_view_died():
    table = _table()
    old = table.share()
    table.put("x", {"color": "blue"})  # copies the outer dicts; the "red" bucket is still shared
    newer = table.share()
    del newer
    gc.collect()
    table.put("y", {"color": "red"})
    assert set(old.indexes["color"]["red"]) == {"a", "b"}
    assert set(table.indexes["color"]["red"]) == {"a", "b", "y"}
