"""Ingestion: load, chunk, classify, scan, embed, seal and store documents."""

from securerag.ingestion.chunking import Chunk, split_text
from securerag.ingestion.classification import Classification, Finding, classify, detect
from securerag.ingestion.embedding import SentenceTransformerEmbedder, bundled_model_path
from securerag.ingestion.loaders import SourceDocument, iter_files, load_file
from securerag.ingestion.pipeline import DocumentInput, IngestedDocument, Ingestor, PreparedDocument
from securerag.ingestion.scanning import RuleScanner

__all__ = [
    "Chunk",
    "Classification",
    "DocumentInput",
    "Finding",
    "IngestedDocument",
    "Ingestor",
    "PreparedDocument",
    "RuleScanner",
    "SentenceTransformerEmbedder",
    "SourceDocument",
    "bundled_model_path",
    "classify",
    "detect",
    "iter_files",
    "load_file",
    "split_text",
]
