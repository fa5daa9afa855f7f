"""SPDX 2.x JSON and CycloneDX JSON SBOMs: summary fields and one record per package.

An SBOM is read twice from its (seekable) file. A small one is decoded whole
each time (`whole`; on the second pass an SPDX package seen before in the same
words is not decoded or mapped again); a large one is streamed, never held: `SbomScan` sees
every parse event of the first pass and keeps counters and a few scalars;
`package_fields` is a generator over a second pass that builds one package
(SPDX `packages[]` item) or one component (CycloneDX `components[]`, nested
components included, each without its children) at a time.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import typing as t

import ijson
import msgspec

from tap_ghcr.attestations import whole
from tap_ghcr.attestations.jsonstream import Reads, events, json_errors, stream_objects

PACKAGE_FIELDS = (
    "package_ref",
    "name",
    "version",
    "purl",
    "purl_type",
    "purl_namespace",
    "purl_name",
    "cpe",
    "license_concluded",
    "license_declared",
    "supplier",
    "package_type",
)
_PURL_CATEGORIES = frozenset({"PACKAGE-MANAGER", "PACKAGE_MANAGER"})
_CPE_TYPES = frozenset({"cpe23Type", "cpe22Type"})
_NO_VALUE = frozenset({"NOASSERTION", "NONE"})
_SUPPLIER_PREFIXES = ("Organization:", "Person:", "Tool:")
_CACHED_PURL_CHARS = 512


def _component_pattern(base: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(base)}components\.item(?:\.components\.item)*$")


class SbomScan:
    """Summary of an SBOM found at `base` ('' for a bare document, 'predicate.' in a statement)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.spdx_version: str | None = None
        self.spdx_created: str | None = None
        self.bom_format: str | None = None
        self.cdx_spec_version: str | None = None
        self.cdx_timestamp: str | None = None
        self.spdx_packages = 0
        self.cdx_components = 0
        self._packages = f"{base}packages.item"
        self._components = _component_pattern(base)
        self._scalars = {
            f"{base}spdxVersion": "spdx_version",
            f"{base}creationInfo.created": "spdx_created",
            f"{base}bomFormat": "bom_format",
            f"{base}specVersion": "cdx_spec_version",
            f"{base}metadata.timestamp": "cdx_timestamp",
        }

    def feed(self, prefix: str, event: str, value: t.Any) -> None:
        """Take one parse event."""
        if event == "start_map":
            if prefix == self._packages:
                self.spdx_packages += 1
            elif prefix.endswith("components.item") and self._components.match(prefix):
                self.cdx_components += 1
        elif event in ("string", "number") and prefix in self._scalars:
            setattr(self, self._scalars[prefix], str(value))

    def read_whole(self, root: t.Any) -> None:
        """Take the SBOM at `base` of a whole document: the fields `feed` finds in its events."""
        if not isinstance(root, dict):
            return
        for prefix, name in self._scalars.items():
            value = root
            for key in prefix[len(self.base) :].split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):  # ijson's string, number
                setattr(self, name, str(value))
        packages = root.get("packages")
        self.spdx_packages = sum(isinstance(p, dict) for p in packages) if isinstance(packages, list) else 0
        self.cdx_components = sum(1 for _ in _components(root))

    @property
    def format(self) -> str | None:
        """`spdx`, `cyclonedx`, or None when this is no SBOM."""
        if self.spdx_version:
            return "spdx"
        if (self.bom_format or "").lower() == "cyclonedx" or (self.cdx_spec_version and self.cdx_components):
            return "cyclonedx"
        return None

    def fields(self) -> dict[str, t.Any]:
        """`sbom_format`, `sbom_spec_version`, `sbom_package_count` (None when no SBOM)."""
        fmt = self.format
        if fmt == "spdx":
            return {
                "sbom_format": fmt,
                "sbom_spec_version": self.spdx_version,
                "sbom_package_count": self.spdx_packages,
            }
        if fmt == "cyclonedx":
            return {
                "sbom_format": fmt,
                "sbom_spec_version": self.cdx_spec_version,
                "sbom_package_count": self.cdx_components,
            }
        return {"sbom_format": None, "sbom_spec_version": None, "sbom_package_count": None}

    @property
    def created(self) -> str | None:
        """The SBOM's creation time (SPDX `creationInfo.created`, CycloneDX `metadata.timestamp`)."""
        return self.spdx_created if self.format == "spdx" else self.cdx_timestamp if self.format else None


def _text(value: t.Any) -> str | None:
    if type(value) is str:  # nearly always: the one test before the general case
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _spdx_value(value: t.Any) -> str | None:
    text = _text(value)
    return None if text is None or text.upper() in _NO_VALUE else text


def strip_supplier(value: t.Any) -> str | None:
    """An SPDX/CycloneDX supplier without its `Organization: ` / `Person: ` prefix; NOASSERTION is None."""
    text = _spdx_value(value)
    if text is None:
        return None
    for prefix in _SUPPLIER_PREFIXES:
        if text.startswith(prefix):
            return _spdx_value(text[len(prefix) :])
    return text


def purl_parts(purl: str | None) -> dict[str, str | None]:
    """`purl_type`, `purl_namespace`, `purl_name` (percent-decoded) parsed with packageurl-python."""
    if not purl:
        return {"purl_type": None, "purl_namespace": None, "purl_name": None}
    # Only ordinary purls are cached: 4,096 hostile megabyte-long ones would stay in memory.
    parse = _parsed_purl if len(purl) <= _CACHED_PURL_CHARS else _parsed_purl.__wrapped__
    purl_type, namespace, name = parse(purl)
    return {"purl_type": purl_type, "purl_namespace": namespace, "purl_name": name}


@functools.lru_cache(maxsize=4096)
def _parsed_purl(purl: str) -> tuple[str | None, str | None, str | None]:
    """Cached: images built on the same base share most of their packages, and parsing is a third of an
    SBOM package's reading time."""
    from packageurl import PackageURL  # with the first SBOM, not with the tap

    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return None, None, None
    return parsed.type or None, parsed.namespace or None, parsed.name


def _ref(ref: t.Any, purl: str | None, name: str | None, version: str | None) -> str | None:
    return _text(ref) or purl or (f"{name}@{version}" if name and version else name)


def spdx_package(pkg: dict) -> dict[str, t.Any]:
    """The package fields of one SPDX `packages[]` item."""
    purl = cpe = None
    refs = pkg.get("externalRefs")
    for ref in refs if isinstance(refs, list) else []:
        if not isinstance(ref, dict):
            continue
        kind, locator = _text(ref.get("referenceType")), _text(ref.get("referenceLocator"))
        category = (_text(ref.get("referenceCategory")) or "").upper()
        if purl is None and kind == "purl" and category in _PURL_CATEGORIES:
            purl = locator
        elif cpe is None and kind in _CPE_TYPES:
            cpe = locator
    name, version = _text(pkg.get("name")), _text(pkg.get("versionInfo"))
    purpose = _text(pkg.get("primaryPackagePurpose"))
    return {
        "package_ref": _ref(pkg.get("SPDXID"), purl, name, version),
        "name": name,
        "version": version,
        "purl": purl,
        **purl_parts(purl),
        "cpe": cpe,
        "license_concluded": _spdx_value(pkg.get("licenseConcluded")),
        "license_declared": _spdx_value(pkg.get("licenseDeclared")),
        "supplier": strip_supplier(pkg.get("supplier")),
        "package_type": purpose.lower() if purpose else None,
    }


def _cyclonedx_licenses(entries: t.Any) -> str | None:
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        lic = entry.get("license") if isinstance(entry.get("license"), dict) else {}
        text = _text(entry.get("expression")) or _text(lic.get("id")) or _text(lic.get("name"))
        if text:
            found.append(text)
    return " AND ".join(found) or None


def cyclonedx_component(comp: dict) -> dict[str, t.Any]:
    """The package fields of one CycloneDX component (its nested components are records of their own)."""
    purl, name, version = _text(comp.get("purl")), _text(comp.get("name")), _text(comp.get("version"))
    kind = _text(comp.get("type"))
    supplier = comp.get("supplier")
    return {
        "package_ref": _ref(comp.get("bom-ref"), purl, name, version),
        "name": name,
        "version": version,
        "purl": purl,
        **purl_parts(purl),
        "cpe": _text(comp.get("cpe")),
        "license_concluded": None,
        "license_declared": _cyclonedx_licenses(comp.get("licenses")),
        "supplier": strip_supplier(supplier.get("name")) if isinstance(supplier, dict) else None,
        "package_type": kind.lower() if kind else None,
    }


def _children(parent: dict) -> t.Iterator[dict]:
    children = parent.get("components")
    return (c for c in children if isinstance(c, dict)) if isinstance(children, list) else iter(())


def _components(root: dict) -> t.Iterator[dict]:
    """CycloneDX components under `root`, nested ones included, each child before its parent (as
    streamed); a loop, not recursion, however deep they nest."""
    stack = [(root, _children(root))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is not None:
            stack.append((child, _children(child)))
            continue
        stack.pop()
        if stack:
            yield node


class SeenPackages:
    """SPDX package JSON texts -> the fields they gave (None: not an object), within a memory budget.

    Builds of one repository, and images on one base, list the same packages in the same words (syft
    names a package by a hash of what it found): a text kept is not decoded or mapped again. A text
    is kept the second time it is mapped. The budget counts each text and its fields' objects, as a
    hostile text of wide characters costs four times its length in every field made of it; over
    `max_bytes` (or `max_entries`) all is dropped, which costs a remapping or two per package.
    Texts over `max_text` bytes are never kept.
    """

    def __init__(self, max_bytes: int = 16 << 20, max_entries: int = 16384, max_text: int = 4096) -> None:
        self.max_bytes, self.max_entries, self.max_text = max_bytes, max_entries, max_text
        self.fields: dict[bytes, dict[str, t.Any] | None] = {}
        self.size = 0
        self.once: set[int] = set()  # hashes of texts seen once, whose fields were not kept

    def remember(self, text: bytes, fields: dict[str, t.Any] | None) -> None:
        """Keep `fields` for `text` the second time it is mapped: a first sync's packages, most of them
        seen once, then cost a hash in a set, not their fields' memory held (20% of their time)."""
        if len(text) > self.max_text:
            return
        key = hash(text)
        if key not in self.once:
            if len(self.once) >= 4 * self.max_entries:
                self.once.clear()
            self.once.add(key)
            return
        cost = sys.getsizeof(text) + (_fields_bytes(text, fields) if fields else 0)
        if self.size + cost > self.max_bytes or len(self.fields) >= self.max_entries:
            self.fields.clear()
            self.size = 0
        self.fields[text] = fields
        self.size += cost


_FIELDS_OVERHEAD = sys.getsizeof(dict.fromkeys(PACKAGE_FIELDS, "")) + len(PACKAGE_FIELDS) * sys.getsizeof("")


def _fields_bytes(text: bytes, fields: dict[str, t.Any]) -> int:
    """What a package's fields hold, at most: from an ASCII text with no \\u escape, every field is one
    byte a character, and all of them together at most three times the text (its strings, the purl's
    parts again, name@version); otherwise counted object by object (a wide character takes four)."""
    if text.isascii() and b"\\u" not in text:
        return 3 * len(text) + _FIELDS_OVERHEAD
    return sys.getsizeof(fields) + sum(map(sys.getsizeof, fields.values()))


_seen_spdx = SeenPackages()
_UNSEEN: t.Any = object()
_CHUNK = 256  # packages mapped before they are given: a 1 MiB SBOM of tiny packages is never all held


class _Undecodable(Exception):
    """A package text msgspec will not decode on its own: the general path reads the document."""


def _spdx_by_text(items: list[msgspec.Raw]) -> t.Iterator[dict[str, t.Any]]:
    """The fields of each package of `items` that is an object, `_CHUNK` at a time: the texts not seen
    before decoded together, mapped, remembered. The fields are shared: not to be changed."""
    seen = _seen_spdx
    for start in range(0, len(items), _CHUNK):
        texts = [bytes(item) for item in items[start : start + _CHUNK]]
        fields_of: dict[bytes, dict[str, t.Any] | None] = {}
        missing = []
        for text in dict.fromkeys(texts):
            fields = seen.fields.get(text, _UNSEEN)
            if fields is _UNSEEN:
                missing.append(text)
            else:
                fields_of[text] = fields
        if missing:
            try:
                decoded = whole.decode(b"[" + b",".join(missing) + b"]")
            except (msgspec.DecodeError, RecursionError):
                raise _Undecodable from None
            for text, pkg in zip(missing, decoded, strict=True):
                fields_of[text] = fields = spdx_package(pkg) if isinstance(pkg, dict) else None
                seen.remember(text, fields)
        for text in texts:
            fields = fields_of[text]
            if fields is not None:
                yield fields


def package_fields(
    fileobj: t.BinaryIO, base: str, sbom_format: str, what: str = "SBOM"
) -> t.Iterator[dict[str, t.Any]]:
    """The package fields of every package of the SBOM at `base`, one at a time (a fresh pass over the file).

    A small SBOM is decoded whole. Streamed, SPDX packages are flat: ijson's C
    item builder yields them one by one; CycloneDX components nest:
    `stream_objects` builds each without its children.
    """
    given = 0
    items = whole.spdx_packages(fileobj, base) if sbom_format == "spdx" else None
    if items is not None:
        try:
            for fields in _spdx_by_text(items):
                yield fields
                given += 1
            return
        except _Undecodable:  # (never seen: the first pass decodes what this one does, or refuses it)
            pass
    yield from itertools.islice(_general_fields(fileobj, base, sbom_format, what), given, None)


def _general_fields(fileobj: t.BinaryIO, base: str, sbom_format: str, what: str) -> t.Iterator[dict[str, t.Any]]:
    """`package_fields` from the decoded document, or streamed when it is too large to decode."""
    document = whole.load(fileobj)
    if document is not whole.NOT_WHOLE:
        root = whole.at(document, base)
        if not isinstance(root, dict):
            return
        if sbom_format == "spdx":
            packages = root.get("packages")
            for pkg in packages if isinstance(packages, list) else ():
                if isinstance(pkg, dict):
                    yield spdx_package(pkg)
        elif sbom_format == "cyclonedx":
            yield from map(cyclonedx_component, _components(root))
        return
    if sbom_format == "spdx":
        fileobj.seek(0)
        with json_errors(what):
            for pkg in ijson.items(Reads(fileobj), f"{base}packages.item", use_float=True):
                if isinstance(pkg, dict):
                    yield spdx_package(pkg)
    elif sbom_format == "cyclonedx":
        pattern = _component_pattern(base)
        match = lambda prefix: bool(pattern.match(prefix))  # noqa: E731
        for comp in stream_objects(events(fileobj, what), match, nested_key="components"):
            yield cyclonedx_component(comp)
