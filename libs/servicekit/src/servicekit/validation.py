"""Checks of input shared by the HTTP edge and other readers: text no database can keep,
and the JSON path of a bad field."""


def unstorable(value, path: str = "$") -> str | None:
    """Text no database can keep: a NUL character, or half of a UTF-16 surrogate pair
    (JSON's "\\ud800" alone). Named by its path, rather than failing on the way in."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{path}: NUL characters are not allowed"
        try:
            value.encode()
        except UnicodeEncodeError:
            return f"{path}: text with a lone surrogate is not valid Unicode"
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := unstorable(key, path) or unstorable(item, f"{path}.{key}"):
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if problem := unstorable(item, f"{path}[{index}]"):
                return problem
    return None


def json_path(parts: tuple[str | int, ...]) -> str:
    text = "$"
    for part in parts:
        if isinstance(part, str) and part.isupper():
            continue  # a discriminated union's tag (SEND_EMAIL, WAIT, AND): not in the JSON
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text
