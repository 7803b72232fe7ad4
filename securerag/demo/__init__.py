"""The bundled demo: sample corpus, policy and runner."""

from securerag.demo.runner import run_demo

__all__ = ["run_demo"]
