"""The library's virtual table: many rows, only the visible ones drawn, keys move a cursor."""

from __future__ import annotations

from textual.app import App

from engine.library.browse import ClipRow
from tui.widgets.cliptable import ClipTable

ROWS = [ClipRow(f"id{n}", f"/lib/pack{n % 7}/hit_{n:05d}.wav", f"pack{n % 7}", 0.5, "kick" if n % 2 else "", None, None)
        for n in range(5000)]


class TableApp(App):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[ClipRow] = []
        self.drawn: list[int] = []

    def compose(self):
        yield ClipTable()

    def on_mount(self) -> None:
        table = self.query_one(ClipTable)
        table.show_rows(ROWS)
        table.focus()

    def on_clip_table_opened(self, message: ClipTable.Opened) -> None:
        self.opened.append(message.row)



async def test_keys_move_the_cursor_through_thousands_of_rows_and_enter_opens():
    app = TableApp()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(ClipTable)
        await pilot.press("down", "down", "pagedown")
        assert table.cursor_row == 2 + table._visible_rows
        await pilot.press("end")
        assert table.current == ROWS[-1]
        assert round(table.scroll_offset.y) == len(ROWS) - table._visible_rows
        await pilot.press("enter")
        await pilot.pause()
        assert app.opened == [ROWS[-1]]
        await pilot.press("home", "enter")
        await pilot.pause()
        assert app.opened[-1] == ROWS[0] and table.scroll_offset.y == 0


async def test_the_header_stays_and_the_name_column_takes_the_spare_width():
    app = TableApp()
    async with app.run_test(size=(100, 8)) as pilot:
        table = app.query_one(ClipTable)
        await pilot.press("end")
        header, last = table.render_line(0).text, table.render_line(table.size.height - 1).text
        assert header.split()[:3] == ["clip", "source", "sec"]
        assert "hit_04999.wav" in last and "kick" in last
        assert len(last) == table.scrollable_content_region.width


async def test_rows_replaced_keep_the_cursor_on_the_same_clip():
    app = TableApp()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(ClipTable)
        await pilot.press(*["down"] * 5)
        kept = table.current
        table.show_rows([row for row in ROWS if row.labels], keep_clip=kept.clip_id)
        assert table.current == kept
        table.show_rows([])
        assert table.current is None
        assert "no clips" in table.render_line(1).text
