"""Ingestion: load, chunk, classify, scan, embed, seal and store documents."""

from securerag.ingestion.chunking import Chunk, split_text
from securerag.ingestion.classification import Classification, Finding, classify, detect
from securerag.ingestion.embedding import SentenceTransformerEmbedder, bundled_model_path
from securerag.ingestion.html import HtmlText, extract_html
from securerag.ingestion.loaders import Skipped, SourceDocument, iter_files, load_file
from securerag.ingestion.pipeline import DocumentInput, IngestedDocument, Ingestor, PreparedDocument
from securerag.scanning import InjectionScanner, RuleScanner

__all__ = [
    "Chunk",
    "Classification",
    "DocumentInput",
    "Finding",
    "HtmlText",
    "IngestedDocument",
    "Ingestor",
    "InjectionScanner",
    "PreparedDocument",
    "RuleScanner",
    "SentenceTransformerEmbedder",
    "Skipped",
    "SourceDocument",
    "bundled_model_path",
    "classify",
    "detect",
    "extract_html",
    "iter_files",
    "load_file",
    "split_text",
]
