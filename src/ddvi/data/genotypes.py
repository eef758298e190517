"""Genotype readers (VCF, PLINK, arrays), streaming QC and population label files.

Every reader streams blocks of SNPs as :class:`GenotypeChunk` objects: ``dosages`` is float32 of
shape (n_samples, k) holding the count (0/1/2) of the *counted* allele, NaN for a missing call.
The counted allele is ALT for VCF and A1 (the 5th .bim column) for PLINK; PLINK files written
from a VCF by plink (or by ``bed_reader.to_bed``) put ALT in A1, so both give the same numbers.
A reader never holds more than one chunk, so files larger than memory stream fine.

Records that QC must drop (multi-allelic, indel/symbolic, non-diploid) are still yielded, marked
in ``GenotypeChunk.flags``; :func:`qc_chunks` counts and drops them in its :class:`QCReport`.
"""

from __future__ import annotations

import abc
import gzip
import math
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "FLAG_MULTIALLELIC", "FLAG_NON_DIPLOID", "FLAG_NON_SNP", "FLAG_OK", "ArraySource",
    "GenotypeChunk", "GenotypeSource", "Labels", "PlinkSource", "QCChunk", "QCConfig", "QCReport",
    "SampleSubset", "VCFSource", "as_source", "open_genotypes", "qc_chunks", "qc_stream", "read_labels",
]

FLAG_OK, FLAG_MULTIALLELIC, FLAG_NON_SNP, FLAG_NON_DIPLOID = 0, 1, 2, 3
_BASES = frozenset("ACGTacgt")
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_PLINK_MAGIC = bytes([0x6C, 0x1B, 0x01])


def _first(ids: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(map(str, list(ids)[:n]))
    return shown + (", ..." if len(ids) > n else "")


def _check_unique(ids: Sequence[str], what: str) -> None:
    uniq, counts = np.unique(np.asarray(ids, dtype=object).astype(str), return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise ValueError(f"{what}: {len(dups)} duplicate sample ID(s): {_first(dups)}")


@dataclass
class GenotypeChunk:
    """A block of k SNPs for all samples.

    ``dosages`` (n_samples, k) float32 counted-allele dosages with NaN for missing; ``flags`` (k,)
    uint8 FLAG_* codes; ``ref``/``alt`` the other/counted allele per SNP (None if unknown).
    """

    dosages: np.ndarray
    snp_ids: list[str]
    flags: np.ndarray
    ref: list[str] | None = None
    alt: list[str] | None = None


class GenotypeSource(abc.ABC):
    """A set of samples whose genotypes can be streamed (repeatedly) in SNP chunks."""

    @property
    @abc.abstractmethod
    def sample_ids(self) -> list[str]: ...

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @abc.abstractmethod
    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        """Stream the SNPs in blocks of at most ``chunk_size``; each call starts from the beginning."""


def _check_chunk_size(chunk_size: int) -> None:
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


# --------------------------------------------------------------------------- arrays


class ArraySource(GenotypeSource):
    """In-memory genotypes (n_samples, n_snps): integers with -1 for missing, or floats with NaN."""

    def __init__(self, dosages: np.ndarray, sample_ids: Sequence[str] | None = None,
                 snp_ids: Sequence[str] | None = None, flags: np.ndarray | None = None,
                 ref: Sequence[str] | None = None, alt: Sequence[str] | None = None):
        x = np.asarray(dosages)
        if x.ndim != 2:
            raise ValueError(f"dosages must be 2-D (n_samples, n_snps), got shape {x.shape}")
        if np.issubdtype(x.dtype, np.integer):
            bad = ~np.isin(x, (-1, 0, 1, 2))
            if bad.any():
                raise ValueError(f"integer dosages must be 0/1/2 or -1 (missing); {int(bad.sum())} "
                                 f"entries are not, e.g. {x[bad][0]}")
            x = np.where(x < 0, np.nan, x).astype(np.float32)
        elif np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
            bad = ~np.isnan(x) & ((x < 0) | (x > 2))
            bad |= np.isinf(x)
            if bad.any():
                raise ValueError(f"float dosages must lie in [0, 2] or be NaN (missing); "
                                 f"{int(bad.sum())} entries do not")
        else:
            raise ValueError(f"dosages must be numeric, got dtype {x.dtype}")
        n, m = x.shape
        self._ids = [str(s) for s in sample_ids] if sample_ids is not None else [f"s{i}" for i in range(n)]
        if len(self._ids) != n:
            raise ValueError(f"{len(self._ids)} sample IDs for {n} genotype rows")
        _check_unique(self._ids, "genotype array")
        self.snp_ids = [str(s) for s in snp_ids] if snp_ids is not None else [f"snp{j}" for j in range(m)]
        for name, vals in (("snp_ids", self.snp_ids), ("ref", ref), ("alt", alt)):
            if vals is not None and len(vals) != m:
                raise ValueError(f"{len(vals)} {name} for {m} genotype columns")
        self.flags = np.zeros(m, np.uint8) if flags is None else np.asarray(flags, np.uint8)
        if self.flags.shape != (m,):
            raise ValueError(f"flags must have shape ({m},), got {self.flags.shape}")
        self.ref = None if ref is None else [str(a) for a in ref]
        self.alt = None if alt is None else [str(a) for a in alt]
        self._x = x

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        _check_chunk_size(chunk_size)
        for a in range(0, self._x.shape[1], chunk_size):
            s = slice(a, a + chunk_size)
            yield GenotypeChunk(self._x[:, s].copy(), self.snp_ids[s], self.flags[s].copy(),
                                None if self.ref is None else self.ref[s],
                                None if self.alt is None else self.alt[s])


class SampleSubset(GenotypeSource):
    """The samples ``index`` (in that order) of another source, e.g. a held-out split.

    Example:
        >>> src = ArraySource(np.array([[0, 1], [2, 2], [1, 0]]), ["a", "b", "c"])
        >>> sub = SampleSubset(src, [2, 0])
        >>> sub.sample_ids, next(sub.chunks()).dosages.tolist()
        (['c', 'a'], [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(self, source: GenotypeSource, index: Sequence[int] | np.ndarray):
        idx = np.asarray(index, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError("a sample subset needs a non-empty 1-D index")
        if idx.min() < 0 or idx.max() >= source.n_samples:
            raise ValueError(f"sample index out of range for {source.n_samples} samples")
        self.source, self.index = source, idx
        ids = source.sample_ids
        self._ids = [ids[i] for i in idx]
        _check_unique(self._ids, "sample subset")

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        for chunk in self.source.chunks(chunk_size):
            yield replace(chunk, dosages=chunk.dosages[self.index])


def as_source(x: GenotypeSource | np.ndarray) -> GenotypeSource:
    """A GenotypeSource as is, or an array wrapped in :class:`ArraySource`."""
    return x if isinstance(x, GenotypeSource) else ArraySource(np.asarray(x))


# --------------------------------------------------------------------------- VCF


def _vcf_text_samples(path: Path) -> list[str] | None:
    """Sample names from the #CHROM line of a text/gzip VCF (None if not readable as text)."""
    try:
        with open(path, "rb") as f:
            opener = gzip.open if f.read(2) == b"\x1f\x8b" else open
        with opener(path, "rt", errors="replace") as f:
            for line in f:
                if line.startswith("#CHROM"):
                    return line.rstrip("\r\n").split("\t")[9:]
                if not line.startswith("#"):
                    return None
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return None


def _check_bgzf_eof(path: Path) -> None:
    """A BGZF file (VCF.gz, BCF) must end with the BGZF EOF block, else it was truncated."""
    with open(path, "rb") as f:
        head = f.read(18)
        if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
            return
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 28))
        if f.read() != _BGZF_EOF:
            raise ValueError(f"{path}: BGZF file is truncated (no end-of-file block); "
                             f"the download or copy is incomplete")


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
_PROBE_BYTES = 8 << 20  # how far past htslib's failure point to look for the end of a gzip stream


def _gzip_error(err: BaseException, lineno: int) -> str:
    if isinstance(err, EOFError):
        return f"file is truncated (unexpected end of gzip stream after line {lineno})"
    return f"file is corrupt (bad gzip data after line {lineno}: {err})"


class _VCFTextCheck:
    """Reads the data lines of a text VCF (plain, gzip or BGZF) beside htslib, for what htslib lets
    through: a line with more genotype columns than the header has samples (htslib drops the extra
    columns without a word) and a gzip stream that ends early. BCF input is not checked (``off``).

    ``check(n)`` reads on until ``n`` data lines were seen; the lines are the ones htslib has just
    parsed (so they are in the page cache) and are only split on newlines and their tabs counted,
    both in C. Gzip errors met on the way are kept for :meth:`finish` / :meth:`probe`.
    """

    def __init__(self, path: Path, n_samples: int):
        self.path, self.n_samples = path, n_samples
        self.tabs = 8 + n_samples  # CHROM..FORMAT plus one column per sample
        self.lineno = 0   # lines read so far (1-based number of the last one)
        self.records = 0  # data lines read so far
        self.error: BaseException | None = None  # a gzip error met while reading
        self.off = self.bcf = False
        raw = open(path, "rb")
        try:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            self._f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        except BaseException:
            raw.close()
            raise
        self._raw = raw
        self.gz = gz
        try:
            if self._f.peek(4)[:3] == b"BCF":
                self.off = self.bcf = True
                return
            while True:
                line = self._f.readline()
                if not line:
                    self.off = True  # no #CHROM line: htslib reports that
                    return
                self.lineno += 1
                if line.startswith(b"#CHROM"):
                    return
                if not line.startswith(b"#"):
                    self.off = True
                    return
        except _GZIP_ERRORS as err:
            self.error = err

    def close(self) -> None:
        self._f.close()
        self._raw.close()

    def _read(self, n: int | None) -> None:
        """Read up to ``n`` more data lines (all if None), raising on one with too many columns."""
        if self.off or self.error is not None:
            return
        f, tabs = self._f, self.tabs
        todo = -1 if n is None else n
        try:
            while todo:
                line = f.readline()
                if not line:
                    return
                self.lineno += 1
                self.records += 1
                todo -= 1
                if line.count(b"\t") > tabs:
                    self._too_many(line)
        except _GZIP_ERRORS as err:
            self.error = err

    def _too_many(self, line: bytes) -> None:
        cols = line.rstrip(b"\r\n").split(b"\t")
        where = ":".join(c.decode(errors="replace") for c in cols[:2])
        raise ValueError(f"VCF {self.path} is malformed at data record {self.records} (line {self.lineno}, "
                         f"{where}): {len(cols) - 9} genotype columns but the #CHROM header line names "
                         f"{self.n_samples} samples")

    def check(self, n_records: int) -> None:
        """Check the data lines up to record ``n_records`` (those htslib has parsed)."""
        if n_records > self.records:
            self._read(n_records - self.records)

    def finish(self) -> None:
        """After htslib's last record: check the remaining lines and the end of the gzip stream."""
        self._read(None)
        if self.error is not None:
            raise ValueError(f"VCF {self.path}: {_gzip_error(self.error, self.lineno)}; "
                             f"the download or copy is incomplete") from self.error

    def probe(self) -> str | None:
        """After an htslib error: why a gzip stream fails within a few MiB of here, if it does."""
        if not self.gz or self.bcf:
            return None
        if self.error is None:
            try:
                left = _PROBE_BYTES
                while left > 0:
                    line = self._f.readline()
                    if not line:
                        return None
                    self.lineno += 1
                    left -= len(line)
            except _GZIP_ERRORS as err:
                self.error = err
        return None if self.error is None else _gzip_error(self.error, self.lineno)


class VCFSource(GenotypeSource):
    """Genotypes from a VCF, VCF.gz or BCF file read with cyvcf2 (ALT allele counted).

    ``samples`` restricts to (and orders by) the given sample IDs. SNP ids are the VCF ID, or
    ``CHROM:POS:REF:ALT`` where the ID is ``.``. Multi-allelic records get FLAG_MULTIALLELIC with
    the dosage counting any non-reference allele; non-SNP records (indels, symbolic, ``*``) get
    FLAG_NON_SNP; records with a ploidy other than 2 for any sample get FLAG_NON_DIPLOID (NaN).
    Malformed or truncated files raise ``ValueError`` naming the file and record: for text VCFs
    (plain, gzip, BGZF) this includes a data line with more genotype columns than the header has
    samples (named by line number) and a gzip stream that ends early ("file is truncated"), which
    htslib itself lets through or reports as a bad header.
    """

    def __init__(self, path: str | Path, samples: Sequence[str] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"VCF file {self.path} does not exist")
        _check_bgzf_eof(self.path)
        vcf = self._open()
        all_ids = list(vcf.samples)
        vcf.close()
        self._n_columns = len(all_ids)
        _check_unique(all_ids, f"VCF {self.path}")
        if not all_ids:
            raise ValueError(f"VCF {self.path} has no samples (no genotype columns)")
        self._subset: list[str] | None = None
        self._order: np.ndarray | None = None
        if samples is None:
            self._ids = all_ids
        else:
            samples = [str(s) for s in samples]
            _check_unique(samples, "requested samples")
            absent = sorted(set(samples) - set(all_ids))
            if absent:
                raise ValueError(f"{len(absent)} requested sample(s) not in VCF {self.path}: "
                                 f"{_first(absent)}")
            pos = {s: i for i, s in enumerate(all_ids)}
            file_order = sorted(samples, key=pos.__getitem__)
            self._subset = file_order
            rank = {s: i for i, s in enumerate(file_order)}
            self._order = np.array([rank[s] for s in samples])
            self._ids = samples

    def _open(self, **kw):
        try:
            import cyvcf2
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("reading VCF needs cyvcf2: pip install 'ddvi[genomics]'") from err
        try:
            return cyvcf2.VCF(str(self.path), **kw)
        except Exception as err:
            why = self._gzip_failure()
            if why:
                raise ValueError(f"cannot read VCF {self.path}: {why}; the download or copy is incomplete") \
                    from err
            ids = _vcf_text_samples(self.path)
            if ids:
                _check_unique(ids, f"VCF {self.path}")
            raise ValueError(f"cannot read VCF {self.path}: {err} (malformed header or not a VCF/BCF)") \
                from err

    def _gzip_failure(self) -> str | None:
        """Why the gzip stream of a VCF breaks near its start (htslib then blames the header)."""
        try:
            text = _VCFTextCheck(self.path, 0)
        except OSError:
            return None
        try:
            return text.probe()
        finally:
            text.close()

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        _check_chunk_size(chunk_size)
        text = _VCFTextCheck(self.path, self._n_columns)
        try:
            yield from self._chunks(chunk_size, text)
        finally:
            text.close()

    def _chunks(self, chunk_size: int, text: _VCFTextCheck) -> Iterator[GenotypeChunk]:
        vcf = self._open(**({"samples": self._subset} if self._subset is not None else {}))
        n = len(self._ids)
        gt = np.empty((chunk_size, n, 2), np.int16)
        flags = np.zeros(chunk_size, np.uint8)
        ids: list[str] = []
        refs: list[str] = []
        alts: list[str] = []
        count, where = 0, "before the first record"
        try:
            while True:
                try:
                    rec = next(vcf)
                except StopIteration:
                    break
                except Exception as err:
                    text.check(count)  # a line with extra columns before this one is reported first
                    why = text.probe()
                    if why:
                        raise ValueError(f"VCF {self.path}: {why}, so data record {count + 1} ({where}) "
                                         f"cannot be read; the download or copy is incomplete") from err
                    raise ValueError(f"VCF {self.path} is malformed or truncated at data record "
                                     f"{count + 1} ({where}): {err}") from err
                count += 1
                j = len(ids)
                try:
                    ids.append(self._parse(rec, count, gt, flags, j, refs, alts))
                except ValueError:
                    text.check(count)  # extra columns on this line or before it come first
                    raise
                where = f"after {rec.CHROM}:{rec.POS}"
                if len(ids) == chunk_size:
                    text.check(count)
                    yield self._emit(gt, flags, ids, refs, alts)
                    ids, refs, alts = [], [], []
            text.finish()
            if ids:
                yield self._emit(gt, flags, ids, refs, alts)
        finally:
            vcf.close()

    def _parse(self, rec, count: int, gt: np.ndarray, flags: np.ndarray, j: int,
               refs: list[str], alts: list[str]) -> str:
        # A malformed text line can parse into a record without REF; touching REF/ID then crashes
        # htslib, so check the span first.
        if rec.end <= rec.start:
            raise ValueError(f"VCF {self.path}: data record {count} ({rec.CHROM}:{rec.POS}) is malformed "
                             f"(no REF allele): {str(rec)[:120]!r}")
        try:
            a = rec.genotype.array()
        except Exception as err:
            raise ValueError(f"VCF {self.path}: data record {count} ({rec.CHROM}:{rec.POS}) has no readable "
                             f"GT genotypes: {err}") from err
        if a.shape[0] != gt.shape[1]:
            raise ValueError(f"VCF {self.path}: data record {count} ({rec.CHROM}:{rec.POS}) has "
                             f"{a.shape[0]} genotypes for {gt.shape[1]} samples")
        ref, alt = rec.REF, rec.ALT
        if len(alt) > 1:
            flags[j] = FLAG_MULTIALLELIC
        elif len(ref) != 1 or ref not in _BASES or (alt and (len(alt[0]) != 1 or alt[0] not in _BASES)):
            flags[j] = FLAG_NON_SNP
        else:
            flags[j] = FLAG_OK
        if a.shape[1] != 3:  # ploidy + phase column
            flags[j] = FLAG_NON_DIPLOID
            gt[j] = -1
        else:
            gt[j] = a[:, :2]  # copy out of cyvcf2's buffer
        refs.append(ref)
        alts.append(",".join(alt) if alt else ".")
        vid = rec.ID
        return vid if vid else f"{rec.CHROM}:{rec.POS}:{ref}:{alts[-1]}"

    def _emit(self, gt, flags, ids, refs, alts) -> GenotypeChunk:
        k = len(ids)
        g = gt[:k]
        fl = flags[:k].copy()
        haploid = (g[:, :, 1] == -2).any(axis=1)  # a haploid call inside a diploid record
        fl[haploid] = FLAG_NON_DIPLOID
        dos = (g > 0).sum(axis=2).astype(np.float32)
        dos[(g < 0).any(axis=2)] = np.nan
        dos[fl == FLAG_NON_DIPLOID] = np.nan
        dos = np.ascontiguousarray(dos.T)
        if self._order is not None:
            dos = dos[self._order]
        return GenotypeChunk(dos, list(ids), fl, list(refs), list(alts))


# --------------------------------------------------------------------------- PLINK


class PlinkSource(GenotypeSource):
    """Genotypes from PLINK 1 binary files ``prefix.bed/.bim/.fam`` via bed-reader.

    Counts allele A1 (5th .bim column; bed-reader's ``count_A1=True``), which plink sets to ALT
    when converting a VCF. Sample IDs are the .fam IID column. Records whose alleles are not single
    bases (indels, I/D codes) get FLAG_NON_SNP.
    """

    def __init__(self, prefix: str | Path, num_threads: int | None = None):
        prefix = Path(prefix)
        if prefix.suffix in (".bed", ".bim", ".fam"):
            prefix = prefix.with_suffix("")
        self.prefix = prefix
        paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
        absent = [str(p) for p in paths.values() if not p.is_file()]
        if absent:
            raise FileNotFoundError(f"PLINK fileset {prefix}: missing {', '.join(absent)}")
        self.bed_path = paths[".bed"]
        n = _count_lines(paths[".fam"])
        m = _count_lines(paths[".bim"])
        with open(self.bed_path, "rb") as f:
            magic = f.read(3)
        if magic != _PLINK_MAGIC:
            raise ValueError(f"{self.bed_path} is not a SNP-major PLINK .bed file (first bytes "
                             f"{magic.hex()}, expected {_PLINK_MAGIC.hex()})")
        size = self.bed_path.stat().st_size
        expected = 3 + m * math.ceil(n / 4)
        if size != expected:
            raise ValueError(f"PLINK fileset {prefix} sizes disagree: .bed is {size} bytes but the .bim has "
                             f"{m} SNPs and the .fam {n} samples, so it should be 3 + {m} * ceil({n}/4) = "
                             f"{expected} bytes")
        if n == 0:
            raise ValueError(f"PLINK fileset {prefix}: the .fam file has no samples")
        from bed_reader import open_bed

        try:
            self._bed = open_bed(self.bed_path, iid_count=n, sid_count=m, num_threads=num_threads)
            self._ids = [str(s) for s in self._bed.iid]
            self.snp_ids = [str(s) for s in self._bed.sid]
            self.ref = [str(s) for s in self._bed.allele_2]
            self.alt = [str(s) for s in self._bed.allele_1]
        except Exception as err:
            raise ValueError(f"cannot read PLINK fileset {prefix}: {err}") from err
        _check_unique(self._ids, f"PLINK {paths['.fam']}")
        ok = np.array([len(a) == 1 and len(b) == 1 and a in "ACGTacgt0" and b in "ACGTacgt0"
                       for a, b in zip(self.ref, self.alt)], dtype=bool)
        self.flags = np.where(ok, FLAG_OK, FLAG_NON_SNP).astype(np.uint8)

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    @property
    def n_snps(self) -> int:
        return len(self.snp_ids)

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        _check_chunk_size(chunk_size)
        for a in range(0, self.n_snps, chunk_size):
            s = slice(a, a + chunk_size)
            x = self._bed.read(index=np.s_[:, s], dtype="float32", order="C")
            yield GenotypeChunk(x, self.snp_ids[s], self.flags[s].copy(), self.ref[s], self.alt[s])


def _count_lines(path: Path) -> int:
    """Non-blank lines of a text file (as PLINK counts samples/SNPs), streamed."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def open_genotypes(vcf: str | Path | None = None, bfile: str | Path | None = None,
                   samples: Sequence[str] | None = None) -> GenotypeSource:
    """Open a VCF/BCF (``vcf``) or a PLINK fileset prefix (``bfile``): exactly one of them."""
    if (vcf is None) == (bfile is None):
        raise ValueError("give exactly one of vcf=... (VCF/VCF.gz/BCF) or bfile=... (PLINK prefix)")
    if vcf is not None:
        return VCFSource(vcf, samples=samples)
    if samples is not None:
        raise ValueError("samples= is only supported for VCF input; subset PLINK files with plink --keep")
    return PlinkSource(bfile)


# --------------------------------------------------------------------------- QC


@dataclass(frozen=True)
class QCConfig:
    """Per-SNP filters: minor allele frequency, missing-call rate, and biallelic SNPs only.

    A SNP is kept when MAF >= ``maf`` and its missing rate <= ``max_missing`` (plink --maf/--geno).
    With ``biallelic_snps_only=False`` multi-allelic sites (non-reference count) and indels are
    kept; non-diploid records are always dropped.
    """

    maf: float = 0.01
    max_missing: float = 0.1
    biallelic_snps_only: bool = True

    def __post_init__(self):
        if not 0.0 <= self.maf < 0.5:
            raise ValueError(f"maf must be in [0, 0.5), got {self.maf}")
        if not 0.0 <= self.max_missing <= 1.0:
            raise ValueError(f"max_missing must be in [0, 1], got {self.max_missing}")


@dataclass
class QCReport:
    """Counts filled while streaming through :func:`qc_chunks` (each SNP counted at its first failure)."""

    n_samples: int = 0
    n_variants_seen: int = 0
    dropped_multiallelic: int = 0
    dropped_non_snp: int = 0
    dropped_non_diploid: int = 0
    dropped_duplicate_id: int = 0
    dropped_missing: int = 0
    dropped_monomorphic: int = 0
    dropped_maf: int = 0
    n_missing_imputed: int = 0
    n_kept: int = 0
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        c = self.config
        steps = [
            ("multi-allelic sites", self.dropped_multiallelic),
            ("non-SNP (indel/symbolic)", self.dropped_non_snp),
            ("non-diploid records", self.dropped_non_diploid),
            ("duplicate SNP ID", self.dropped_duplicate_id),
            (f"missing rate > {c.get('max_missing', '?')}", self.dropped_missing),
            ("monomorphic", self.dropped_monomorphic),
            (f"MAF < {c.get('maf', '?')}", self.dropped_maf),
        ]
        out = [f"QC: {self.n_samples} samples, {self.n_variants_seen} variants read"]
        out += [f"  dropped {name + ':':<28}{count:>10}" for name, count in steps]
        out.append(f"  {'kept SNPs:':<36}{self.n_kept:>10}")
        out.append(f"  {'missing calls imputed (2p):':<36}{self.n_missing_imputed:>10}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class QCChunk:
    """A QC'd block: imputed float32 dosages (n, k), kept ids, means (2p), and which columns of the
    raw chunk starting at variant ``offset`` were kept."""

    dosages: np.ndarray
    snp_ids: list[str]
    mean: np.ndarray
    keep: np.ndarray
    ref: list[str] | None
    alt: list[str] | None
    offset: int


def qc_stream(source: GenotypeSource, config: QCConfig | None = None, report: QCReport | None = None,
              chunk_size: int = 4096) -> Iterator[QCChunk]:
    """Stream QC'd chunks with the per-SNP decisions; ``report`` (if given) is filled as we go."""
    config = config or QCConfig()
    report = report if report is not None else QCReport()
    report.n_samples = source.n_samples
    report.config = asdict(config)
    seen: set[str] = set()
    for ch in source.chunks(chunk_size):
        x, fl = ch.dosages, ch.flags
        k = x.shape[1]
        offset = report.n_variants_seen
        report.n_variants_seen += k
        alive = np.ones(k, bool)

        def drop(mask: np.ndarray, alive: np.ndarray = alive) -> int:
            hit = alive & mask
            alive[hit] = False
            return int(hit.sum())

        if config.biallelic_snps_only:
            report.dropped_multiallelic += drop(fl == FLAG_MULTIALLELIC)
            report.dropped_non_snp += drop(fl == FLAG_NON_SNP)
        report.dropped_non_diploid += drop(fl == FLAG_NON_DIPLOID)
        ids = np.asarray(ch.snp_ids, dtype=object)
        _, first = np.unique(ids.astype(str), return_index=True)
        dup = np.ones(k, bool)
        dup[first] = False
        dup |= np.fromiter((s in seen for s in ch.snp_ids), bool, k)
        seen.update(ch.snp_ids)
        report.dropped_duplicate_id += drop(dup)
        miss = np.isnan(x)
        n_obs = x.shape[0] - miss.sum(axis=0)
        report.dropped_missing += drop((n_obs == 0) | (1.0 - n_obs / x.shape[0] > config.max_missing))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(miss, 0.0, x).sum(axis=0, dtype=np.float64) / n_obs
        p = mean / 2.0
        report.dropped_monomorphic += drop((p <= 0.0) | (p >= 1.0))
        report.dropped_maf += drop(np.minimum(p, 1.0 - p) < config.maf)
        if not alive.any():
            continue
        xk = x[:, alive]
        mk = miss[:, alive]
        mu = mean[alive]
        n_imp = int(mk.sum())
        if n_imp:
            xk = np.where(mk, mu.astype(np.float32)[None, :], xk)
        report.n_missing_imputed += n_imp
        report.n_kept += int(alive.sum())
        sel = np.flatnonzero(alive)
        yield QCChunk(np.ascontiguousarray(xk, dtype=np.float32), [ch.snp_ids[i] for i in sel], mu, alive,
                      None if ch.ref is None else [ch.ref[i] for i in sel],
                      None if ch.alt is None else [ch.alt[i] for i in sel], offset)


def qc_chunks(source: GenotypeSource, config: QCConfig | None = None, report: QCReport | None = None,
              chunk_size: int = 4096) -> Iterator[np.ndarray]:
    """Stream cleaned float32 chunks (n, k) with missing calls imputed by 2p; fills ``report``."""
    for qc in qc_stream(source, config, report, chunk_size):
        yield qc.dosages


# --------------------------------------------------------------------------- labels

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
                       f"{_first(self.missing_ids)}")
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
        raise ValueError(f"label file {path}: {len(dups)} duplicate sample ID(s): {_first(dups)}")
    sample_ids = [str(s) for s in sample_ids]
    have = np.array([s in labels for s in sample_ids], dtype=bool)
    missing_ids = [s for s, h in zip(sample_ids, have) if not h]
    if missing_ids and missing == "error":
        raise ValueError(f"{len(missing_ids)} of {len(sample_ids)} genotype samples have no label in {path}: "
                         f"{_first(missing_ids)} (use missing='drop' to leave them out)")
    index = np.flatnonzero(have)
    kept = [sample_ids[i] for i in index]
    pops = np.array([labels[s][0] for s in kept], dtype=str)
    supers = None if i_sp is None else np.array([labels[s][1] for s in kept], dtype=str)
    n_unused = len(set(labels) - set(sample_ids))
    if missing_ids:
        warnings.warn(f"{len(missing_ids)} genotype samples have no label in {path} and were dropped: "
                      f"{_first(missing_ids)}", stacklevel=2)
    return Labels(kept, index, pops, supers, missing_ids, n_unused, str(path))
