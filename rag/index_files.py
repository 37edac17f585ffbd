"""Is a local Chroma vector index whole on disk? A check of its file sizes, without loading it.

A process killed while Chroma rewrites its HNSW files can leave them cut short (chroma-core/chroma#7238).
Reading such an index back usually fails, but not always: with ``link_lists.bin`` cut, the loader can
read zeros past the end and search goes on without the links it lost. The sizes tell for sure:
``header.bin`` gives the element count and bytes per element; ``link_lists.bin`` holds, for each
element, a 4-byte length and that many bytes, so walking it must end exactly at its last byte.
A header this module does not recognise (another Chroma file format) is left to the read-back probe.
"""

from __future__ import annotations

import struct
from pathlib import Path

# After a 4-byte format version: offsetLevel0, max_elements, cur_element_count, size_data_per_element
# (all size_t), as hnswlib writes them.
_HEADER = struct.Struct("<IQQQQ")


def torn_segment(segment: Path) -> str | None:
    """Why the HNSW files in ``segment`` cannot be whole, or None if their sizes agree."""
    try:
        header = (segment / "header.bin").read_bytes()
        if len(header) < _HEADER.size:
            return f"{segment.name}/header.bin is {len(header)} bytes, too short for a header"
        _, offset0, capacity, count, per_element = _HEADER.unpack_from(header)
        if offset0 != 0 or not 0 <= count <= capacity or not 0 < per_element < 1 << 20:
            return None  # not the layout this check knows
        level0 = (segment / "data_level0.bin").stat().st_size
        if level0 < count * per_element:
            return f"{segment.name}/data_level0.bin is {level0} bytes, short of {count} x {per_element}"
        size = (segment / "link_lists.bin").stat().st_size
        if size > max(level0, 1 << 20):  # the upper levels' links are a small part of level 0's
            return f"{segment.name}/link_lists.bin is {size} bytes, more than the {level0} of level 0"
        with open(segment / "link_lists.bin", "rb") as file:
            links = file.read()
    except OSError as exc:
        return f"{segment.name}: {exc.strerror or exc}"
    pos = 0
    for i in range(count):
        if pos + 4 > len(links):
            return f"{segment.name}/link_lists.bin ends at byte {len(links)}, before link list {i + 1} of {count}"
        pos += 4 + int.from_bytes(links[pos:pos + 4], "little")
    if pos != len(links):
        return f"{segment.name}/link_lists.bin is {len(links)} bytes; its {count} link lists take {pos}"
    return None


def torn_index(chroma_dir: Path) -> str | None:
    """The first torn HNSW segment under a local Chroma folder, or None."""
    return next((why for header in sorted(chroma_dir.glob("*/header.bin")) if (why := torn_segment(header.parent))),
                None)
