"""Text from outside (file names, labels, sources, messages that quote them) made safe to show.

A file name may hold any character but '/' and NUL: an ESC that would start a terminal escape
sequence, a BEL, a newline that would split a table row, a right-to-left override that reorders
what follows. `printable` shows each such character visibly instead, so both faces can print
names as they are without the terminal acting on them.
"""

from __future__ import annotations

import unicodedata

# Controls that reorder the text around them (U+202A–U+202E, U+2066–U+2069): shown, never obeyed.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CONTROL_PICTURE = 0x2400  # U+2400 "␀" … U+241F "␟": one visible picture per C0 control


def _visible(character: str) -> str:
    code = ord(character)
    if code < 0x20:
        return chr(_CONTROL_PICTURE + code)  # "\n" → "␊", ESC → "␛", BEL → "␇", TAB → "␉"
    if code == 0x7F:
        return "␡"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _is_control(character: str) -> bool:
    return unicodedata.category(character) in ("Cc", "Zl", "Zp", "Cs") or character in _BIDI_CONTROLS


def printable(text: str) -> str:
    """`text` with every control character shown visibly: C0 controls as their Unicode control
    pictures (a newline as "␊", ESC as "␛", a tab as "␉"), DEL as "␡", C1 controls, line and
    paragraph separators, lone surrogates (undecodable bytes of a file name) and bidirectional
    overrides as `\\x85`/`\\u2028`-style escapes. Other text, including any other Unicode, is
    kept as it is."""
    if text.isprintable():  # the common case: nothing to do ("isprintable" is stricter than needed)
        return text
    return "".join(_visible(character) if _is_control(character) else character for character in text)
