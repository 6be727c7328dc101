"""An example Parley plugin: LangChain tools, registered by entry points. One converts
units; the other saves a measurement to a file, so it asks for the user's approval."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field

# Factors to a base unit per dimension: metres, kilograms, litres.
_FACTORS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.001), "cm": ("length", 0.01), "m": ("length", 1.0),
    "km": ("length", 1000.0), "in": ("length", 0.0254), "ft": ("length", 0.3048),
    "mi": ("length", 1609.344),
    "g": ("mass", 0.001), "kg": ("mass", 1.0), "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "ml": ("volume", 0.001), "l": ("volume", 1.0), "gal": ("volume", 3.785411784),
}
_TEMPERATURES = {"c", "f", "k"}


class ConvertArgs(BaseModel):
    value: float = Field(description="The number to convert.")
    from_unit: str = Field(description="Unit of the value: mm, cm, m, km, in, ft, mi, g, kg, "
                                       "lb, oz, ml, l, gal, C, F or K.")
    to_unit: str = Field(description="Unit to convert to, of the same kind.")


def _to_kelvin(value: float, unit: Literal["c", "f", "k"]) -> float:
    return {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: Literal["c", "f", "k"]) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


@tool(args_schema=ConvertArgs)
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a quantity between units of length, mass, volume or temperature,
    e.g. 5 km to mi, 70 F to C, 2 lb to kg."""
    src, dst = from_unit.strip().lower(), to_unit.strip().lower()
    if src in _TEMPERATURES and dst in _TEMPERATURES:
        result = _from_kelvin(_to_kelvin(value, src), dst)  # type: ignore[arg-type]
        return f"{value:g} {from_unit} = {result:.2f} {to_unit}"
    for unit in (src, dst):
        if unit not in _FACTORS:
            known = ", ".join([*_FACTORS, "C", "F", "K"])
            raise ToolException(f"unknown unit {unit!r}; use one of {known}")
    (src_kind, src_factor), (dst_kind, dst_factor) = _FACTORS[src], _FACTORS[dst]
    if src_kind != dst_kind:
        raise ToolException(f"cannot convert {src_kind} ({from_unit}) to {dst_kind} ({to_unit})")
    return f"{value:g} {from_unit} = {value * src_factor / dst_factor:.4g} {to_unit}"


convert_units.handle_tool_error = True


class MeasurementArgs(BaseModel):
    name: str = Field(description="What was measured, e.g. 'desk width'.")
    value: float = Field(description="The measured number.")
    unit: str = Field(description="Its unit, e.g. cm.")


@tool(args_schema=MeasurementArgs)
def log_measurement(name: str, value: float, unit: str) -> str:
    """Save a measurement to the user's measurement log (a CSV file), to look up later."""
    log = Path(os.environ.get("PARLEY_EXAMPLE_LOG", "measurements.csv"))
    with log.open("a", encoding="utf-8", newline="") as out:
        csv.writer(out).writerow([name, f"{value:g}", unit])
    return f"saved {name}: {value:g} {unit} to {log.name}"


# It writes to the user's files, so each call waits for the user's approval (Parley's
# tool approval reads this key; an agent's spec may still waive it).
log_measurement.metadata = {"requires_approval": True}
