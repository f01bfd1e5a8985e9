"""The YAML presets (``configs/``), shipped with the package as ``inpaintgan/configs/``.

    inpaintgan config --list                       # the presets and what each is for
    inpaintgan train -c glcic_cifar10 --data DIR   # a preset by name; DIR: a folder of images

In the repository ``src/inpaintgan/configs`` is a link to the top-level ``configs/`` folder, so the
presets are edited in one place and a wheel (``pip install .``) carries them as package data. A
preset is named by its file name without ``.yaml``; a path to a YAML file works as before.
"""

from __future__ import annotations

from pathlib import Path

from inpaintgan.config import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent / "configs"
#: a source checkout without the link (or a copy of the tree that dropped it)
REPO_DIR = Path(__file__).resolve().parents[2] / "configs"


def preset_dir() -> Path | None:
    for d in (PACKAGE_DIR, REPO_DIR):
        if d.is_dir() and any(d.glob("*.yaml")):
            return d
    return None


def list_presets() -> list[tuple[str, str]]:
    """(name, its description: the first comment line of the file), sorted by name."""
    d = preset_dir()
    if d is None:
        return []
    rows = []
    for p in sorted(d.glob("*.yaml")):
        words: list[str] = []
        for line in p.read_text().splitlines():  # the leading comment
            line = line.strip()
            if not line.startswith("#") or len(words) > 40:
                break
            words += line.lstrip("#").split()
        end = next((i for i, w in enumerate(words) if i > 2 and _ends_sentence(w)), len(words) - 1)
        desc = " ".join(words[: end + 1]).rstrip(":")
        if len(desc) > 110:
            desc = desc[:107].rstrip() + "..."
        rows.append((p.stem, desc))
    return rows


def _ends_sentence(word: str) -> bool:
    if word.endswith(":"):
        return True
    return word.endswith(".") and word.lower() not in ("al.", "e.g.", "i.e.", "vs.", "cf.") and len(word) > 3


def find_preset(name_or_path: str | Path) -> Path:
    """A preset name (``glcic_cifar10``, ``glcic_cifar10.yaml`` or ``configs/glcic_cifar10.yaml``)
    or a YAML file path -> the file; otherwise a one-line error listing the presets."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    d = preset_dir()
    stem = p.name[: -len(".yaml")] if p.name.endswith(".yaml") else p.name[: -len(".yml")] if p.name.endswith(".yml") else p.name
    if d is not None and (p.parent == Path(".") or p.parent.name == "configs"):
        cand = d / f"{stem}.yaml"
        if cand.is_file():
            return cand
    names = ", ".join(n for n, _ in list_presets()) or "(none found)"
    raise ConfigError(f"config {str(name_or_path)!r} is neither a YAML file nor a preset; presets: {names} "
                      "(inpaintgan config --list)")


__all__ = ["find_preset", "list_presets", "preset_dir"]
