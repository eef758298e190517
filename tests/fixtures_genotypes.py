"""Writers for tiny VCF / BCF / PLINK files used by the genotype tests (written into tmp_path)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=1>",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
]


def gt_string(d: int, rng: np.random.Generator | None = None) -> str:
    """A VCF GT string for dosage d (-1 = missing); hets are 0/1, 1/0 or 0|1 at random."""
    if d < 0:
        return "./."
    if d == 1 and rng is not None:
        return str(rng.choice(["0/1", "1/0", "0|1", "1|0"]))
    return {0: "0/0", 1: "0/1", 2: "1/1"}[int(d)]


def vcf_text(samples: list[str], records: list[tuple]) -> str:
    """records: (pos, id, ref, alt, [GT strings]) on chromosome 1."""
    lines = HEADER + ["\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                                 *samples])]
    for pos, vid, ref, alt, gts in records:
        lines.append("\t".join(["1", str(pos), vid, ref, alt, ".", ".", ".", "GT", *gts]))
    return "\n".join(lines) + "\n"


def dosage_records(dosages: np.ndarray, snp_ids: list[str], ref: list[str], alt: list[str],
                   seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [(100 * (j + 1), snp_ids[j], ref[j], alt[j], [gt_string(d, rng) for d in dosages[:, j]])
            for j in range(dosages.shape[1])]


def random_genotypes(n: int, m: int, seed: int = 0, missing: float = 0.05):
    """int8 dosages (-1 missing) with two sub-populations, plus sample/SNP ids and alleles."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, size=(2, m))
    group = rng.integers(0, 2, size=n)
    x = rng.binomial(2, p[group]).astype(np.int8)
    x[rng.random((n, m)) < missing] = -1
    bases = np.array(list("ACGT"))
    ref = list(bases[rng.integers(0, 4, m)])
    alt = [bases[(list(bases).index(r) + 1 + rng.integers(0, 3)) % 4] for r in ref]
    return x, [f"id{i}" for i in range(n)], [f"rs{j}" for j in range(m)], ref, [str(a) for a in alt]


def bgzf_compress(data: bytes, block: int = 0xFF00) -> bytes:
    """BGZF (blocked gzip with the BC extra field and the end-of-file block), as bgzip writes it:
    lets tests compress VCF text that htslib's writer would refuse or repair."""
    out = []
    for a in range(0, len(data), block):
        chunk = data[a:a + block]
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        cdata = c.compress(chunk) + c.flush()
        out.append(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", 6) + b"BC"
                   + struct.pack("<HH", 2, 18 + len(cdata) + 8 - 1) + cdata
                   + struct.pack("<II", zlib.crc32(chunk), len(chunk)))
    out.append(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    return b"".join(out)


def write_text(path: Path, text: str, fmt: str = "vcf") -> Path:
    """Write VCF text as is: fmt 'vcf' (plain), 'gzip' (plain gzip) or 'bgzf' (pure-Python BGZF)."""
    data = text.encode()
    packed = {"vcf": lambda b: b, "gzip": gzip.compress, "bgzf": bgzf_compress}[fmt](data)
    Path(path).write_bytes(packed)
    return Path(path)


def write_vcf(path: Path, samples: list[str], records: list[tuple], fmt: str = "vcf") -> Path:
    """fmt: 'vcf' (text), 'gzip' (plain gzip), 'bgzf' (.vcf.gz via htslib) or 'bcf'."""
    path = Path(path)
    text = vcf_text(samples, records)
    if fmt == "vcf":
        path.write_text(text)
    elif fmt == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
    elif fmt in ("bgzf", "bcf"):
        import cyvcf2

        tmp = path.with_name(path.name + ".src.vcf")
        tmp.write_text(text)
        src = cyvcf2.VCF(str(tmp))
        out = cyvcf2.Writer(str(path), src, mode="wz" if fmt == "bgzf" else "wb")
        for rec in src:
            out.write_record(rec)
        out.close()
        src.close()
        tmp.unlink()
    else:
        raise ValueError(fmt)
    return path


def write_plink(prefix: Path, dosages: np.ndarray, samples: list[str], snp_ids: list[str],
                ref: list[str], alt: list[str]) -> Path:
    """PLINK .bed/.bim/.fam with A1 = alt (the counted allele) and A2 = ref."""
    from bed_reader import to_bed

    x = np.asarray(dosages, np.float32)
    x = np.where(x < 0, np.nan, x)
    m = x.shape[1]
    props = {"iid": samples, "fid": samples, "sid": snp_ids, "allele_1": alt, "allele_2": ref,
             "chromosome": ["1"] * m, "bp_position": [100 * (j + 1) for j in range(m)]}
    to_bed(Path(str(prefix) + ".bed"), x, properties=props)
    return Path(prefix)
