"""Packs of the simulated Partner API: image bookkeeping and the ``GET /packs`` listing.

Owns: ``PackControls`` (the pack methods of ``SimState``), building a pack's images, changing a pack record,
and the listing rule — packs owned by the scope plus, when ``include_public``, public packs of anyone; ``search``
a case-insensitive partial name match; newest first (ties by id descending); ``total`` counted before
``offset``/``limit``. ``SimState`` holds its lock around every use.

Must not import: httpx, redis, apprise, litestar, uvicorn, or any notifier module outside ``notifier.simulator``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from notifier.simulator.records import (
    JsonObj,
    PackImageRec,
    PackRec,
    Scope,
    check_fields,
    fmt_ms,
    lookup,
    pack_detail_wire,
    pack_summary_wire,
    to_ms,
)

_PACK_FIELDS = frozenset({"name", "is_public", "preview_image_url", "created_at", "scope_id", "images"})


def make_images(rec: PackRec, images: int | Sequence[str | JsonObj]) -> list[PackImageRec]:
    """Images from a count (generated URLs, one millisecond apart) or from URLs / ``{id, url, created_at}``."""
    if isinstance(images, int):
        if images < 0:
            raise ValueError("images must not be negative")
        return [PackImageRec(str(uuid.uuid4()), _image_url(rec, n), rec.created_ms + n) for n in range(1, images + 1)]
    out: list[PackImageRec] = []
    for n, item in enumerate(images, start=1):
        if isinstance(item, str):
            out.append(PackImageRec(str(uuid.uuid4()), item, rec.created_ms + n))
        else:
            created = item.get("created_at")
            out.append(
                PackImageRec(
                    str(item.get("id") or uuid.uuid4()),
                    str(item["url"]),
                    to_ms(created) if created is not None else rec.created_ms + n,
                )
            )
    return out


def update(rec: PackRec, fields: dict[str, Any]) -> None:
    check_fields(fields, _PACK_FIELDS, "pack")
    values = dict(fields)
    if "created_at" in values:
        values["created_ms"] = to_ms(values.pop("created_at"))
    if "images" in values:
        values["images"] = make_images(rec, values["images"])
    for name, value in values.items():
        setattr(rec, name, value)


def add_image(rec: PackRec, url: str | None, image_id: str, created_ms: int) -> JsonObj:
    if any(i.id == image_id for i in rec.images):
        raise ValueError(f"image {image_id} already in pack {rec.id}")
    image = PackImageRec(image_id, url or _image_url(rec, len(rec.images) + 1), created_ms)
    rec.images.append(image)
    return {"id": image.id, "url": image.url, "created_at": fmt_ms(image.created_ms)}


def remove_image(rec: PackRec, image_id: str) -> None:
    kept = [i for i in rec.images if i.id != image_id]
    if len(kept) == len(rec.images):
        raise KeyError(f"image {image_id} not found in pack {rec.id}")
    rec.images = kept


def pack_json(rec: PackRec) -> JsonObj:
    """Control view: the summary fields, the images and the owner."""
    out = pack_summary_wire(rec)
    out["images"] = pack_detail_wire(rec)["images"]
    out["scope_id"] = rec.scope_id
    return out


def detail(rec: PackRec) -> JsonObj:
    return pack_detail_wire(rec)


def query(
    packs: Iterable[PackRec], scope_id: str, search: str, limit: int, offset: int, include_public: bool
) -> JsonObj:
    needle = search.lower()
    visible = [
        p
        for p in packs
        if (p.scope_id == scope_id or (include_public and p.is_public)) and (not needle or needle in p.name.lower())
    ]
    visible.sort(key=lambda p: (p.created_ms, p.id), reverse=True)
    return {
        "packs": [pack_summary_wire(p) for p in visible[offset : offset + limit]],
        "total": len(visible),
        "limit": limit,
        "offset": offset,
    }


def _image_url(rec: PackRec, n: int) -> str:
    return f"https://cdn.example.com/packs/{rec.id}/{n:02d}.jpg"


class PackControls:
    """The pack half of ``SimState``: control methods and the two pack reads of the API."""

    lock: threading.RLock
    packs: dict[str, PackRec]

    def now_ms(self) -> int:
        raise NotImplementedError

    def _scope(self, scope_id: str | None) -> Scope:
        raise NotImplementedError

    def add_pack(
        self,
        name: str,
        *,
        id: str | None = None,
        is_public: bool = False,
        images: int | Sequence[str | JsonObj] = 0,
        preview_image_url: str | None = None,
        created_at: datetime | str | None = None,
        scope_id: str | None = None,
    ) -> JsonObj:
        """A pack owned by a scope; ``images`` is a count (generated URLs) or a list of URLs / image dicts."""
        with self.lock:
            created = self.now_ms() if created_at is None else to_ms(created_at)
            rec = PackRec(
                id or str(uuid.uuid4()), self._scope(scope_id).id, name, created, is_public, preview_image_url
            )
            if rec.id in self.packs:
                raise ValueError(f"pack {rec.id} already exists")
            rec.images = make_images(rec, images)
            self.packs[rec.id] = rec
            return pack_json(rec)

    def update_pack(self, pack_id: str, **fields: Any) -> JsonObj:
        """Change name, is_public, preview_image_url, created_at, scope_id, or ``images`` (replaces them all)."""
        with self.lock:
            rec = lookup(self.packs, pack_id, "pack")
            if "scope_id" in fields:
                fields["scope_id"] = self._scope(fields["scope_id"]).id
            update(rec, fields)
            return pack_json(rec)

    def add_pack_image(
        self, pack_id: str, url: str | None = None, *, id: str | None = None, created_at: datetime | str | None = None
    ) -> JsonObj:
        with self.lock:
            rec = lookup(self.packs, pack_id, "pack")
            created = self.now_ms() if created_at is None else to_ms(created_at)
            return add_image(rec, url, id or str(uuid.uuid4()), created)

    def remove_pack_image(self, pack_id: str, image_id: str) -> None:
        with self.lock:
            remove_image(lookup(self.packs, pack_id, "pack"), image_id)

    def delete_pack(self, pack_id: str) -> None:
        with self.lock:
            lookup(self.packs, pack_id, "pack")
            del self.packs[pack_id]

    def pack(self, pack_id: str) -> JsonObj:
        with self.lock:
            return pack_json(lookup(self.packs, pack_id, "pack"))

    def all_packs(self) -> list[JsonObj]:
        with self.lock:
            return [pack_json(rec) for rec in self.packs.values()]

    def query_packs(self, scope: Scope, *, search: str, limit: int, offset: int, include_public: bool) -> JsonObj:
        with self.lock:
            return query(self.packs.values(), scope.id, search, limit, offset, include_public)

    def pack_in(self, scope: Scope, pack_id: str) -> JsonObj | None:
        with self.lock:
            rec = self.packs.get(pack_id)
            if rec is None or not (rec.scope_id == scope.id or rec.is_public):
                return None
            return detail(rec)
