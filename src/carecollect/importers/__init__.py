"""Importers and exporters: CSV and JSON in carecollect's schema, and FHIR R4.

Every import is all or nothing and reports every bad row at once in one
:class:`ImportFailed`. See :doc:`/reference/import-schema`.
"""

from __future__ import annotations

from .records import ImportFailed, ImportProblem, ImportSummary
from .tabular import CSV_COLUMNS, FORMAT, export_csv, export_document, export_json, import_csv, import_json

__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "ImportFailed",
    "ImportProblem",
    "ImportSummary",
    "export_csv",
    "export_document",
    "export_json",
    "import_csv",
    "import_json",
]
