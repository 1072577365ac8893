"""A plain-English text corpus with no download: Debian's `fortunes` package, or any UTF-8 file the user names."""
import os

FORTUNES_DIR = "/usr/share/games/fortunes"


def _fortune_files(directory):
    files = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.endswith((".dat", ".u8")) or name.startswith(".") or "off" == name:
            continue
        if os.path.isfile(path) and not os.path.islink(path):
            files.append(path)
    return files


def _strip_separators(text):
    # A fortune file is fortunes separated by lines holding a single '%'.
    return "\n".join(line for line in text.split("\n") if line.rstrip("\r") != "%")


def text_corpus(path=None):
    """The text of the corpus as a str.

    path=None reads Debian's `fortunes` package: the plain text files in /usr/share/games/fortunes (not the
    .dat/.u8 index files, not the offensive 'off' directory), in sorted name order, with the '%' separator lines
    removed. A path names a UTF-8 text file (or a directory of fortune-style files).
    """
    if path is None:
        if not os.path.isdir(FORTUNES_DIR):
            raise FileNotFoundError(f"text_corpus: '{FORTUNES_DIR}' does not exist; the default corpus comes from "
                                    "the Debian package 'fortunes' (apt-get install fortunes), or pass path=FILE")
        path = FORTUNES_DIR
    path = os.fspath(path)
    if os.path.isdir(path):
        files = _fortune_files(path)
        if not files:
            raise FileNotFoundError(f"text_corpus: no text files in '{path}'"
                                    + (" (Debian package 'fortunes')" if path == FORTUNES_DIR else ""))
        parts = []
        for f in files:
            parts.append(_strip_separators(_read(f)))
        return "\n".join(p.rstrip("\n") + "\n" for p in parts)
    return _read(path)


def _read(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"text_corpus: '{path}': no such file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text_corpus: '{path}' is not UTF-8 text ({e.reason} at byte {e.start})") from None
