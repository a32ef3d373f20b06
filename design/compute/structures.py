"""Reading uploaded protein structures (PDB or mmCIF) with gemmi."""

from __future__ import annotations


def parse_structure(raw: bytes, filename: str) -> dict:
    """Read a PDB or mmCIF upload with gemmi. Returns {"format", "chains",
    "n_atoms"}; raises ValueError naming the file."""
    import gemmi

    lower = filename.lower()
    fmt = "cif" if lower.endswith((".cif", ".mmcif")) else "pdb"
    if b"\x00" in raw[:4096]:
        raise ValueError(f"“{filename}” is a binary file, not a PDB or mmCIF structure.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"“{filename}” is not text, so not a PDB or mmCIF structure.") from None
    if fmt == "pdb" and text.lstrip().startswith("data_"):
        fmt = "cif"
    try:
        structure = _read(text, fmt)
    except Exception as exc:  # gemmi raises RuntimeError/ValueError with its own message
        raise ValueError(f"“{filename}” could not be read as {dict(pdb='PDB', cif='mmCIF')[fmt]}: {exc}") from None
    if len(structure) == 0 or not any(len(ch) for ch in structure[0]):
        raise ValueError(f"“{filename}” has no atoms.")
    structure.setup_entities()
    # A PDB file's hetero groups after TER come back as a second part of the
    # same chain name: merge the parts so each chain is listed once.
    by_name: dict[str, dict] = {}
    n_atoms = 0
    for chain in structure[0]:
        polymer = chain.get_polymer()
        n_atoms += sum(len(res) for res in chain)
        entry = by_name.setdefault(chain.name, {"chain": chain.name, "residues": 0, "polymer": "", "ligands": []})
        if len(polymer):
            entry["residues"] += len(polymer)
            entry["polymer"] = str(polymer.check_polymer_type()).split(".")[-1]
        entry["ligands"] += [f"{r.name} {r.seqid.num}" for r in chain.get_ligands()]
    chains = list(by_name.values())
    if not any(c["polymer"].startswith("Peptide") for c in chains):
        raise ValueError(f"“{filename}” has no protein chain.")
    return {"format": fmt, "chains": chains, "n_atoms": n_atoms}


def _read(text: str, fmt: str):
    import gemmi

    if fmt == "cif":
        block = gemmi.cif.read_string(text).sole_block()
        return gemmi.make_structure_from_block(block)
    structure = gemmi.read_pdb_string(text)
    return structure


def to_pdb_text(raw: bytes, fmt: str) -> str:
    text = raw.decode("utf-8")
    if fmt == "pdb":
        return text
    structure = _read(text, "cif")
    structure.setup_entities()
    return structure.make_pdb_string()


