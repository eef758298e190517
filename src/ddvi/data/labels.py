"""Population label files (1000 Genomes panels and similar tables) aligned with genotype samples."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ddvi.data.genotype_source import first_ids

__all__ = ["Labels", "read_labels"]

_SAMPLE_COLS = ("sample", "sample_id", "iid", "id")
_POP_COLS = ("pop", "population")
_SUPER_COLS = ("super_pop", "super_population", "superpopulation")


@dataclass
class Labels:
    """Population labels aligned with genotype samples.

    ``index`` are the positions in the given sample IDs that have labels (all of them unless
    ``missing="drop"`` removed some); ``population``/``super_population`` are aligned with it.
    """

    sample_ids: list[str]
    index: np.ndarray
    population: np.ndarray
    super_population: np.ndarray | None
    missing_ids: list[str]
    n_unused: int
    path: str

    @property
    def n_missing(self) -> int:
        return len(self.missing_ids)

    def lines(self) -> list[str]:
        out = [f"labels from {self.path}: {len(self.sample_ids)} samples labelled, "
               f"{len(np.unique(self.population))} populations"]
        if self.missing_ids:
            out.append(f"  {self.n_missing} genotype samples have no label (dropped): "
                       f"{first_ids(self.missing_ids)}")
        if self.n_unused:
            out.append(f"  {self.n_unused} labelled samples are not in the genotypes (ignored)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _split(line: str) -> list[str]:
    if "\t" in line:
        parts = [p.strip() for p in line.rstrip("\r\n").split("\t")]
        while parts and parts[-1] == "":
            parts.pop()
        return parts
    return line.split()


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.lower() for h in header]
    for name in names:
        if name in low:
            return low.index(name)
    return None


def read_labels(path: str | Path, sample_ids: Sequence[str],
                missing: Literal["error", "drop"] = "error") -> Labels:
    """Read a population label file and align it with ``sample_ids``.

    Accepts the 1000 Genomes panel (``sample pop super_pop gender``) and other tab/whitespace
    tables whose header names the sample column (sample/sample_id/iid/id), the population
    (pop/population) and optionally the super-population (super_pop/super_population/
    superpopulation), case-insensitively; without a header, columns are sample, population
    [, super-population]. ``missing`` says what to do with genotype samples that have no label.
    """
    if missing not in ("error", "drop"):
        raise ValueError(f"missing must be 'error' or 'drop', got {missing!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    rows: list[tuple[int, list[str]]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                rows.append((lineno, _split(line)))
    if not rows:
        raise ValueError(f"label file {path} is empty")
    first = [c.lstrip("#") for c in rows[0][1]]
    i_s = _find(first, _SAMPLE_COLS)
    if i_s is not None:
        i_p, i_sp = _find(first, _POP_COLS), _find(first, _SUPER_COLS)
        if i_p is None:
            raise ValueError(f"label file {path}: header {first} has no population column "
                             f"(one of {', '.join(_POP_COLS)})")
        rows = rows[1:]
    else:
        i_s, i_p = 0, 1
        i_sp = 2 if len(first) >= 3 else None
    need = max(c for c in (i_s, i_p, i_sp) if c is not None) + 1
    labels: dict[str, tuple[str, str | None]] = {}
    dups: list[str] = []
    for lineno, parts in rows:
        if len(parts) < need:
            raise ValueError(f"label file {path}, line {lineno}: {len(parts)} column(s), need {need}: "
                             f"{' '.join(parts)!r}")
        sid = parts[i_s]
        if sid in labels:
            dups.append(f"{sid} (line {lineno})")
        labels[sid] = (parts[i_p], None if i_sp is None else parts[i_sp])
    if dups:
        raise ValueError(f"label file {path}: {len(dups)} duplicate sample ID(s): {first_ids(dups)}")
    sample_ids = [str(s) for s in sample_ids]
    have = np.array([s in labels for s in sample_ids], dtype=bool)
    missing_ids = [s for s, h in zip(sample_ids, have) if not h]
    if missing_ids and missing == "error":
        raise ValueError(f"{len(missing_ids)} of {len(sample_ids)} genotype samples have no label in {path}: "
                         f"{first_ids(missing_ids)} (use missing='drop' to leave them out)")
    index = np.flatnonzero(have)
    kept = [sample_ids[i] for i in index]
    pops = np.array([labels[s][0] for s in kept], dtype=str)
    supers = None if i_sp is None else np.array([labels[s][1] for s in kept], dtype=str)
    n_unused = len(set(labels) - set(sample_ids))
    if missing_ids:
        warnings.warn(f"{len(missing_ids)} genotype samples have no label in {path} and were dropped: "
                      f"{first_ids(missing_ids)}", stacklevel=2)
    return Labels(kept, index, pops, supers, missing_ids, n_unused, str(path))
