"""Genotypes from VCF, VCF.gz or BCF files (cyvcf2), with the checks htslib leaves out.

The ALT allele is counted. Records that QC must drop (multi-allelic, indel/symbolic, non-diploid)
are still yielded, marked in ``GenotypeChunk.flags``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ddvi.data.genotype_source import (
    FLAG_MULTIALLELIC,
    FLAG_NON_DIPLOID,
    FLAG_NON_SNP,
    FLAG_OK,
    GenotypeChunk,
    GenotypeSource,
    check_chunk_size,
    check_unique,
    first_ids,
)

__all__ = ["VCFSource"]

_BASES = frozenset("ACGTacgt")
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


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
        check_unique(all_ids, f"VCF {self.path}")
        if not all_ids:
            raise ValueError(f"VCF {self.path} has no samples (no genotype columns)")
        self._subset: list[str] | None = None
        self._order: np.ndarray | None = None
        if samples is None:
            self._ids = all_ids
        else:
            samples = [str(s) for s in samples]
            check_unique(samples, "requested samples")
            absent = sorted(set(samples) - set(all_ids))
            if absent:
                raise ValueError(f"{len(absent)} requested sample(s) not in VCF {self.path}: "
                                 f"{first_ids(absent)}")
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
                check_unique(ids, f"VCF {self.path}")
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
        check_chunk_size(chunk_size)
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

