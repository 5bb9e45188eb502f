"""Type stubs of the Rust extension ``twslake._native`` (see ``python/src/lib.rs``).

Users call the :mod:`twslake` module; this one is its engine.
"""

from typing import Any

class TwslakeError(Exception): ...
class BadInputError(TwslakeError): ...
class StorageError(TwslakeError): ...
class CorruptError(TwslakeError): ...
class IntegrityError(TwslakeError): ...
class QueryError(TwslakeError): ...
class PrerequisiteError(TwslakeError): ...
class GatewayError(TwslakeError): ...

# (dataset, symbols, bar_size, what_to_show, start, end); None filters mean "all".
Scan = tuple[str, list[str] | None, str | None, str | None, str | None, str | None]

class Frame:
    """A table made in Rust, handed over through the Arrow PyCapsule interface."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def __len__(self) -> int: ...
    @property
    def columns(self) -> list[str]: ...

class NativeLake:
    def __init__(self, url: str, storage_options: list[tuple[str, str]] | None = None) -> None: ...
    @property
    def url(self) -> str: ...
    def storage_options(self) -> list[tuple[str, str]]: ...
    def symbols(self) -> list[str]: ...
    def finest_series(
        self, dataset_name: str, symbols: list[str] | None, what_to_show: str, start: str | None, end: str | None
    ) -> str | None: ...
    def files(self, scan: Scan) -> tuple[list[tuple[str, str]], Frame | None]: ...
    def read(self, scan: Scan) -> Frame: ...
    def missing_windows(
        self,
        dataset_name: str,
        sym: str,
        bar_size: str,
        what_to_show: str,
        start: str,
        end: str,
        con_id: int | None = None,
    ) -> Frame: ...
    def status(self, now: str | None = None) -> Frame: ...
    def spot_at(self, sym: str, at: str) -> tuple[float, str, str]: ...
    def chain_as_of(self, sym: str, at: str) -> Frame: ...
    def option_panel(
        self,
        sym: str,
        at: str,
        start: str | None,
        bar_size: str | None,
        what_to_show: str,
        spot_what_to_show: str | None,
        rate: float,
        dividend_yield: float,
        implied_vol: bool,
        greeks: bool,
    ) -> Frame: ...
    def surface(
        self,
        sym: str,
        at: str,
        bar_size: str | None,
        max_staleness_min: int | None,
        rate: float,
        dividend_yield: float,
    ) -> tuple[str, Frame, Frame, Frame]: ...
    def surface_history(
        self,
        sym: str,
        start: str,
        end: str,
        every: str,
        bar_size: str | None,
        max_staleness_min: int | None,
        rate: float,
        dividend_yield: float,
        threads: int | None,
    ) -> str: ...
    def sql(self, query: str) -> Frame: ...

def implied_vols(
    table: Any,
    price: str,
    discount: str,
    forward: str,
    strike: str,
    t: str,
    right: str,
    spot: str,
    out: str,
    greeks: bool,
) -> Frame: ...
def sim_truth(sym: str, at: str, seed: int = 0) -> Frame: ...
def sim_truth_grid(sym: str, at: str, seed: int = 0) -> Frame: ...
def version() -> str: ...
