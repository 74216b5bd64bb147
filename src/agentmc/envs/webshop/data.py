"""WebShop product data: load and check the user's files, build goals and the search index.

WebShop's product data cannot be downloaded by agentmc. Without a data
directory, agentmc uses its own small *synthetic* sample catalogue
(:mod:`agentmc.envs.webshop.sample`: 300 generated products, clearly not
WebShop's data; ``Catalogue.synthetic`` is true and a warning says so). Users
who have the real data point agentmc at a directory holding the original files
(``data_dir=...`` or ``$AGENTMC_WEBSHOP_DATA``; names as in the WebShop
repository's ``data/`` folder):

``items_shuffle_1000.json`` or ``items_shuffle.json`` (products)
    A JSON list of objects with ``asin`` and ``name`` (required) and
    ``pricing`` (``"$12.99"``, ``"$10.00 - $20.00"`` or a list of numbers),
    ``customization_options`` (``{option: [{"value": ...}, ...]}``),
    ``full_description``, ``small_description`` (text or list of bullets),
    ``category``, ``query``, ``product_category`` (``"a › b › c"``).
``items_ins_v2_1000.json`` or ``items_ins_v2.json`` (attributes)
    ``{asin: {"attributes": [...]}}``: each product's attribute phrases.
``items_human_ins.json`` (goals)
    ``{asin: [{"instruction", "instruction_attributes", "instruction_options"}]}``:
    the human-written shopping instructions and what they ask for.

Goals are built as WebShop's ``get_human_goals`` builds them: for each product
(file order) and each of its instructions with attributes, up to four goals
with price caps at the next four multiples of $10 above the price. Two
deliberate differences: a price range is priced at its lower bound (WebShop
draws from it with an unseeded random generator), and with
``goal_order="webshop"`` the list is shuffled exactly as WebShop shuffles it
(``random.Random(233)``, a private generator), so task ``i`` is WebShop's
session ``i`` and the AMC paper's index files apply.

Example:
    >>> catalogue = load_catalogue("path/to/webshop/data")  # doctest: +SKIP
    >>> catalogue.goals[0].instruction  # doctest: +SKIP
    'i need a long clip-in hair extension which is natural looking, ...'
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agentmc.errors import ConfigError, DataError, require

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = ("items_ins_v2_1000.json", "items_ins_v2.json")
GOAL_FILES = ("items_human_ins.json",)
DATA_ENV_VAR = "AGENTMC_WEBSHOP_DATA"
PRICE_CAPS = tuple(10.0 * k for k in range(1, 100))
NO_PRICE_CAP = 1_000_000.0

EXPECTED = (
    f"a directory with {PRODUCT_FILES[0]} (or {PRODUCT_FILES[1]}): a list of products "
    "with asin, name, pricing, customization_options, full_description, small_description; "
    f"{ATTRIBUTE_FILES[0]} (or {ATTRIBUTE_FILES[1]}): {{asin: {{attributes: [...]}}}}; "
    f"{GOAL_FILES[0]}: {{asin: [{{instruction, instruction_attributes, instruction_options}}]}}"
)

GoalOrder = Literal["file", "webshop"]

log = logging.getLogger("agentmc")


@dataclass(frozen=True)
class Product:
    """One product page."""

    asin: str
    title: str
    price: float
    price_text: str
    options: tuple[tuple[str, tuple[str, ...]], ...]
    description: str
    bullets: tuple[str, ...]
    attributes: tuple[str, ...]
    category: str = ""
    query: str = ""
    product_category: str = ""
    reviews: tuple[str, ...] = ()

    @property
    def option_values(self) -> dict[str, tuple[str, ...]]:
        return dict(self.options)


@dataclass(frozen=True)
class Goal:
    """One shopping task: the instruction and what a purchase is scored against."""

    asin: str
    instruction: str
    attributes: tuple[str, ...]
    options: tuple[str, ...]
    price_cap: float
    name: str
    query: str
    category: str
    product_category: str


class Catalogue:
    """Products, goals and a BM25 index over the products.

    Args:
        products: The products, in file order.
        goals: The goals (tasks), in task-id order.
    """

    #: True for agentmc's generated sample catalogue (not WebShop's data).
    synthetic: bool = False

    def __init__(self, products: Sequence[Product], goals: Sequence[Goal]) -> None:
        bm25s = require("bm25s", "webshop")
        self.products = tuple(products)
        self.goals = tuple(goals)
        self.by_asin = {product.asin: product for product in self.products}
        corpus = [document_text(product) for product in self.products]
        tokens = bm25s.tokenize(corpus, stopwords="en", show_progress=False)
        self._bm25s = bm25s
        self._index = bm25s.BM25()
        self._index.index(tokens, show_progress=False)
        self._vocabulary = set(self._index.vocab_dict)

    def search(self, keywords: str, k: int) -> list[str]:
        """The ``k`` best-matching asins for ``keywords`` (BM25; ties by file order)."""
        words = self._bm25s.tokenize(
            [keywords], stopwords="en", show_progress=False, return_ids=False
        )[0]
        words = [word for word in words if word in self._vocabulary]
        if not words:
            return []
        scores = np.asarray(self._index.get_scores(words), dtype=float)
        order = np.lexsort((np.arange(len(scores)), -scores))
        return [self.products[i].asin for i in order[:k] if scores[i] > 0]


def document_text(product: Product) -> str:
    """What the search index sees of a product."""
    options = " ".join(value for _, values in product.options for value in values)
    return " ".join(
        [product.title, " ".join(product.bullets), product.description, options]
        + list(product.attributes)
    )


def parse_pricing(pricing: Any) -> tuple[float, str]:
    """Price and price tag as WebShop shows them; ranges are priced at the lower bound.

    >>> parse_pricing("$10.00 - $20.00")
    (10.0, '$10.0 to $20.0')
    >>> parse_pricing(None)
    (100.0, '$100.0')
    """
    if isinstance(pricing, list) and all(isinstance(p, (int, float)) for p in pricing):
        values = [float(p) for p in pricing]
    elif isinstance(pricing, str) and pricing.strip():
        values = []
        for part in pricing.split("$")[1:]:
            digits = re.sub(r"[^\d.]", "", part)
            try:
                values.append(float(digits))
            except ValueError:
                raise ValueError(f"unreadable price {pricing!r}") from None
    elif not pricing:
        values = []
    else:
        raise ValueError(f"pricing must be text like '$12.99' or a list, not {pricing!r}")
    if not values:
        return 100.0, "$100.0"
    if len(values) == 1:
        return values[0], f"${values[0]}"
    return values[0], f"${values[0]} to ${values[1]}"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"cannot read the WebShop {what} file {path}: {error}") from None
    except ValueError as error:
        raise DataError(f"{path} is not valid JSON ({error}); expected {what}") from None


def _text(value: Any, where: str, field: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {field!r} must be text, not {type(value).__name__}")
    return value


def _texts(value: Any, where: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {field!r} must be a list of strings")
    return tuple(value)


def parse_product(raw: Any, attributes: dict[str, Any], where: str) -> Product:
    """One product from WebShop's product file (see the module docstring)."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object with asin and name, not {raw!r:.60}")
    for field in ("asin", "name"):
        if field not in raw:
            raise DataError(f"{where}: required field {field!r} is missing; expected {EXPECTED}")
    asin = _text(raw["asin"], where, "asin", required=True)
    try:
        price, price_text = parse_pricing(raw.get("pricing"))
    except ValueError as error:
        raise DataError(f"{where} (asin {asin}): {error}") from None
    options: list[tuple[str, tuple[str, ...]]] = []
    custom = raw.get("customization_options") or {}
    if not isinstance(custom, dict):
        raise DataError(f"{where} (asin {asin}): customization_options must be an object")
    for name, contents in custom.items():
        if contents is None:
            continue
        if not isinstance(contents, list) or not all(
            isinstance(c, dict) and isinstance(c.get("value"), str) for c in contents
        ):
            raise DataError(
                f"{where} (asin {asin}): customization_options[{name!r}] must be a list "
                'of {"value": text} objects'
            )
        values = tuple(c["value"].strip().replace("/", " | ").lower() for c in contents)
        options.append((str(name).lower(), values))
    entry = attributes.get(asin) or {}
    product_attributes = _texts(
        entry.get("attributes") if isinstance(entry, dict) else None,
        f"attributes of {asin}",
        "attributes",
    )
    reviews = raw.get("reviews") or []
    return Product(
        asin=asin,
        title=_text(raw["name"], where, "name", required=True),
        price=price,
        price_text=price_text,
        options=tuple(options),
        description=_text(raw.get("full_description"), where, "full_description"),
        bullets=_texts(raw.get("small_description"), where, "small_description"),
        attributes=product_attributes,
        category=_text(raw.get("category"), where, "category"),
        query=_text(raw.get("query"), where, "query").lower().strip(),
        product_category=_text(raw.get("product_category"), where, "product_category"),
        reviews=tuple(
            str(r.get("body", r.get("review", ""))) if isinstance(r, dict) else str(r)
            for r in reviews
        ),
    )


def build_goals(
    products: Sequence[Product], instructions: dict[str, Any], path: Path
) -> list[Goal]:
    """WebShop's human goals, in its order (before shuffling); see the module docstring."""
    goals: list[Goal] = []
    for product in products:
        entries = instructions.get(product.asin)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise DataError(f"{path}: entry {product.asin!r} must be a list of instructions")
        for number, entry in enumerate(entries):
            where = f"{path}: {product.asin}[{number}]"
            if not isinstance(entry, dict) or "instruction" not in entry:
                raise DataError(f"{where}: expected an object with 'instruction'; {EXPECTED}")
            attributes = _texts(
                entry.get("instruction_attributes"), where, "instruction_attributes"
            )
            if not attributes:
                continue  # WebShop skips instructions without attributes
            raw_options = entry.get("instruction_options") or []
            if isinstance(raw_options, dict):
                raw_options = list(raw_options.values())
            options = _texts(raw_options, where, "instruction_options")
            caps = [cap for cap in PRICE_CAPS if cap > product.price][:4]
            text = _text(entry["instruction"], where, "instruction", required=True).strip(".")
            for k in range(4):
                if len(caps) >= 2:
                    if k >= len(caps):
                        continue
                    cap, suffix = caps[k], f", and price lower than {caps[k]:.2f} dollars"
                else:
                    cap, suffix = NO_PRICE_CAP, ""
                goals.append(
                    Goal(
                        asin=product.asin,
                        instruction=text + suffix,
                        attributes=attributes,
                        options=options,
                        price_cap=cap,
                        name=product.title,
                        query=product.query,
                        category=product.category,
                        product_category=product.product_category,
                    )
                )
    return goals


def find_files(directory: Path) -> tuple[Path, Path, Path]:
    """The products, attributes and goals files in ``directory``.

    Raises:
        DataError: A file is missing; the message lists what is expected.
    """
    if not directory.is_dir():
        raise DataError(f"WebShop data directory {directory} does not exist; expected {EXPECTED}")
    found = []
    for names in (PRODUCT_FILES, ATTRIBUTE_FILES, GOAL_FILES):
        path = next((directory / name for name in names if (directory / name).is_file()), None)
        if path is None:
            raise DataError(f"{directory} has no {' or '.join(names)}; expected {EXPECTED}")
        found.append(path)
    return found[0], found[1], found[2]


def data_directory(data_dir: str | Path | None) -> Path:
    """``data_dir``, else the directory named by ``$AGENTMC_WEBSHOP_DATA``, else the sample.

    The fallback is agentmc's synthetic sample catalogue (a warning says so once).
    """
    from agentmc.envs.webshop.sample import SAMPLE_DIR

    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR)
        if not data_dir:
            _warn_sample()
            return SAMPLE_DIR
    return Path(data_dir).expanduser().resolve()


@functools.cache
def _warn_sample() -> None:
    log.warning(
        "webshop: no data directory given, using agentmc's SYNTHETIC sample catalogue (300 "
        "generated products, not WebShop's data); for the real data pass data_dir=... or set "
        "$%s to %s",
        DATA_ENV_VAR,
        EXPECTED,
    )


def load_catalogue(
    data_dir: str | Path | None = None, goal_order: GoalOrder = "webshop"
) -> Catalogue:
    """Load (and cache) the catalogue in ``data_dir``; see the module docstring.

    Args:
        data_dir: Directory with WebShop's files (default: ``$AGENTMC_WEBSHOP_DATA``).
        goal_order: ``"webshop"`` (WebShop's session order) or ``"file"`` (unshuffled).

    Raises:
        DataError: Files missing or malformed; the message says what is expected.
        ConfigError: Unknown ``goal_order``.
    """
    if goal_order not in ("file", "webshop"):
        raise ConfigError(f"goal_order must be 'file' or 'webshop', not {goal_order!r}")
    directory = data_directory(data_dir)
    paths = find_files(directory)
    stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _load_cached(stamp, goal_order)


@functools.lru_cache(maxsize=4)
def _load_cached(stamp: tuple[tuple[str, int, int], ...], goal_order: GoalOrder) -> Catalogue:
    products_path, attributes_path, goals_path = (Path(s[0]) for s in stamp)
    raw_products = _read_json(products_path, "products (a list of product objects)")
    if not isinstance(raw_products, list):
        raise DataError(f"{products_path} must hold a JSON list of products; expected {EXPECTED}")
    attributes = _read_json(attributes_path, "attributes ({asin: {attributes: [...]}})")
    instructions = _read_json(goals_path, "goals ({asin: [instructions]})")
    for path, value in ((attributes_path, attributes), (goals_path, instructions)):
        if not isinstance(value, dict):
            raise DataError(f"{path} must hold a JSON object keyed by asin; expected {EXPECTED}")
    products: list[Product] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_products):
        product = parse_product(raw, attributes, f"{products_path}: product {index}")
        if product.asin in seen or product.asin == "nan" or len(product.asin) > 10:
            continue  # WebShop drops duplicate and malformed asins the same way
        seen.add(product.asin)
        products.append(product)
    goals = build_goals(products, instructions, goals_path)
    if not goals:
        raise DataError(
            f"{goals_path} yields no goals for the products in {products_path} (no asin in "
            "common, or no instruction has instruction_attributes)"
        )
    if goal_order == "webshop":
        random.Random(233).shuffle(goals)  # WebShop's session order (private generator)
    catalogue = Catalogue(products, goals)
    catalogue.synthetic = (products_path.parent / "NOTICE.txt").is_file() and all(
        p.asin.startswith("SYN") for p in products
    )
    return catalogue
