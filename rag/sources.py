"""Where articles come from: the paths named to ``rag ingest`` resolved, the files read from them with their
manifests' metadata, and the file an article's source names."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.cleaning import META_FIELDS
from rag.errors import InputError
from rag.loaders import MANIFEST, Manifest, checked, iter_files, load_manifest, load_records, shown
from rag.models import Article, ArticleRow

__all__ = ["load_paths", "resolved", "source_file", "under", "with_manifests"]
log = logging.getLogger(__name__)
SHOWN_IDS = 5  # a manifest's unmatched ids named in its warning


def source_file(source: str | None) -> str:
    """The file an article came from (a .jsonl article's source is "file:line")."""
    return re.sub(r":\d+$", "", source or "")


def resolved(path: Path) -> Path:
    """``path`` absolute with its links resolved; as given (made absolute) when that fails, so that the
    error then names what was typed (a broken link, a loop). A link to a file keeps its own name and folder,
    as it does when its folder is ingested: its id and its manifest are from there (named alone, it was
    stored again under its target's name, without its metadata)."""
    try:
        if path.is_symlink() and path.is_file():
            return path.parent.resolve(strict=True) / path.name
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return path.absolute()


def under(path: str, places: set[str]) -> bool:
    """Whether ``path`` is one of ``places`` or inside one of them."""
    return path in places or any(path.startswith(p + "/") for p in places)


def with_manifests(paths: Sequence[Path], rows: Iterable[ArticleRow]) -> list[Path]:
    """``paths``, where a manifest.jsonl named alone (no other path named in its folder) stands for the files
    in its folder and below that stored articles came from: read again, they take its metadata (naming it
    changed nothing). Files there never ingested stay out; ``ingest``'s scope has the manifest, not them, so
    nothing is removed."""
    out: list[Path] = []
    sources = {source_file(r.source) for r in rows}
    for path in paths:
        alone = not any(other != path and other.is_relative_to(path.parent) for other in paths)
        if path.name == MANIFEST and path.is_file() and alone:
            out += [Path(f) for f in sorted(sources) if under(f, {str(path.parent)}) and Path(f).is_file()]
        out.append(path)  # as metadata only, as ever (a bad manifest is reported here)
    return out


def load_paths(paths: Sequence[Path], max_bytes: int) -> tuple[list[Article], list[str], set[str]]:
    """Articles from files and folders, plus one line per rejected file and the rejected paths. Each
    file takes its metadata from the manifest.jsonl beside it and from those of the folders above it
    (the nearest wins, field by field), up to the first folder above the one ingested that has none, so
    a file gets the same metadata whether its folder or one above is ingested. A manifest.jsonl named
    as a file is what it is in a folder: metadata for the files beside it."""
    articles: list[Article] = []
    rejected: list[str] = []
    bad: set[str] = set()
    manifests: dict[Path, Manifest | None] = {}  # None: the folder's manifest is bad (reported once)
    merged: dict[Path, Manifest | None] = {}

    def manifest_of(folder: Path) -> Manifest | None:
        if folder not in manifests:
            try:
                manifests[folder] = load_manifest(folder, max_bytes)
            except InputError as exc:
                manifests[folder] = None
                rejected.append(str(exc))
        return manifests[folder]

    def metadata(folder: Path, root: Path) -> Manifest | None:
        """The metadata for the files of ``folder``, ``root`` being the folder ingested."""
        if folder not in merged:
            above = folder.parent
            if folder != root and folder.is_relative_to(root):
                outer = metadata(above, root)
            elif above != folder and (above / MANIFEST).is_file():
                outer = metadata(above, above)
            else:
                outer = {}
            own = manifest_of(folder)
            merged[folder] = None if outer is None or own is None else {
                art_id: {k: (own.get(art_id) or {}).get(k) or (outer.get(art_id) or {}).get(k) for k in META_FIELDS}
                for art_id in outer.keys() | own.keys()}
        return merged[folder]

    seen: set[Path] = set()
    ids: dict[Path, set[str]] = {}  # folder -> the ids of the articles read from its files, and the files' names
    unknown: set[Path] = set()  # folders holding ids not read: a folder that cannot be read, a .jsonl not read whole
    for path in paths:
        try:
            checked(path)
        except InputError as exc:
            rejected.append(str(exc))
            bad.add(str(path))
            continue
        root = path if path.is_dir() else path.parent
        if metadata(root, root) is None:
            bad.add(str(path))
            continue
        if path.name == MANIFEST and path.is_file():
            continue  # read above, as its folder's metadata
        blocked: dict[Path, str] = {}
        files = iter_files(path, blocked)
        for folder, why in blocked.items():  # nothing under it is removed
            rejected.append(f"{shown(folder)}: cannot read folder ({why})")
            bad.add(str(folder))
            unknown.add(folder)
        for file in files:
            if file in seen:  # named twice, or a folder and a folder or file inside it: read once
                continue
            seen.add(file)
            ids.setdefault(file.parent, set()).add(file.stem)  # a bad .txt's id is known, a bad record's is not
            good: list[Article] = []
            errors: list[str] = []
            if (manifest := metadata(file.parent, root)) is not None:  # else reported once, for its folder
                try:
                    good, errors = load_records(file, max_bytes, manifest)
                except InputError as exc:
                    errors = [str(exc)]
            articles.extend(good)
            rejected.extend(errors)
            ids[file.parent].update(a.id for a in good)
            if errors or manifest is None:
                bad.add(str(file))
                if file.suffix.lower() == ".jsonl":  # the ids of the records not read are unknown: no warning
                    unknown.add(file.parent)
    _warn_unmatched([p for p in paths if p.is_dir()], manifests, ids, unknown)
    return articles, rejected, bad


def _warn_unmatched(folders: Sequence[Path], manifests: dict[Path, Manifest | None], ids: dict[Path, set[str]],
                    unknown: set[Path]) -> None:
    """Warns of the ids of a manifest in ``folders`` (ingested whole) that no article read from its folder or
    below has: a misspelt id's metadata was left out without a word. Not where some ids there are ``unknown``."""
    for folder, manifest in manifests.items():
        if not manifest or not any(folder.is_relative_to(f) for f in folders):
            continue
        if any(f.is_relative_to(folder) for f in unknown):
            continue
        found = set().union(*(v for f, v in ids.items() if f.is_relative_to(folder)))
        if not (missing := sorted(manifest.keys() - found)):
            continue
        more = f" and {len(missing) - SHOWN_IDS} more" if len(missing) > SHOWN_IDS else ""
        log.warning("warning: %s: no article read from its folder has the id(s) %s%s; their metadata is not used",
                    shown(folder / MANIFEST), ", ".join(f"'{shown(m)}'" for m in missing[:SHOWN_IDS]), more)
