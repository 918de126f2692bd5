"""Docker's shell-word rules for Dockerfile arguments: splitting on whitespace with
quotes kept, and variable substitution (`$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`,
`${V+x}`, `${V:?msg}`) with quote removal, as moby's shell lexer does."""

from __future__ import annotations

from collections.abc import Mapping


class WordError(ValueError):
    """A malformed word (unterminated quote or `${`, a `${V:?msg}` with V unset)."""


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes in the words."""
    words: list[str] = []
    cur = ""
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and quote != "'" and i + 1 < len(text):
            cur += ch + text[i + 1]
            in_word = True
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur += ch
        elif ch in "'\"":
            quote = ch
            cur += ch
            in_word = True
        elif ch.isspace():
            if in_word:
                words.append(cur)
                cur, in_word = "", False
        else:
            cur += ch
            in_word = True
        i += 1
    if in_word:
        words.append(cur)
    return words


def expand(word: str, env: Mapping[str, str], escape: str = "\\",
           keep_quotes: bool = False) -> str:
    """Substitute variables and remove quotes (unless `keep_quotes`)."""
    return _Lexer(word, env, escape, keep_quotes).run()


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str,
                 keep_quotes: bool) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.keep = keep_quotes
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def run(self, stop: str = "") -> str:
        out = []
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch in stop:
                break
            if ch == self.escape:
                self.take()
                nxt = self.take()
                out.append((ch + nxt) if self.keep else nxt)
            elif ch == "'":
                self.take()
                body = self._until("'")
                out.append(f"'{body}'" if self.keep else body)
            elif ch == '"':
                self.take()
                out.append(self._double())
            elif ch == "$":
                self.take()
                out.append(self._variable())
            else:
                out.append(self.take())
        return "".join(out)

    def _until(self, end: str) -> str:
        start = self.pos
        idx = self.text.find(end, start)
        if idx < 0:
            raise WordError(f"unexpected end of statement while looking for matching {end}")
        self.pos = idx + 1
        return self.text[start:idx]

    def _double(self) -> str:
        out = []
        while True:
            if self.pos >= len(self.text):
                raise WordError('unexpected end of statement while looking for matching "')
            ch = self.take()
            if ch == '"':
                break
            if ch == self.escape and self.peek() in ('"', "$", self.escape):
                nxt = self.take()
                out.append((ch + nxt) if self.keep else nxt)
            elif ch == "$":
                out.append(self._variable())
            else:
                out.append(ch)
        text = "".join(out)
        return f'"{text}"' if self.keep else text

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def _variable(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.take()
            return self._braced()
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise WordError(f"bad substitution in {self.text!r}")
        ch = self.take()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.take()
        if ch not in "-+?":
            raise WordError(f"unsupported modifier ({ch}) in substitution {self.text!r}")
        word = self._nested()
        value = self.env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set and value is not None else word
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            raise WordError(f"{name}: {word or 'is not allowed to be empty'}")
        return value or ""

    def _nested(self) -> str:
        """The word of a `${V:-word}` up to the matching brace, itself expanded."""
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise WordError(f"missing '}}' in substitution {self.text!r}")
            if self.peek() == "}":
                self.take()
                return "".join(out)
            out.append(self.run(stop="}"))
