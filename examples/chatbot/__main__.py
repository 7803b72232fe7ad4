"""`python -m examples.chatbot [--port P]`: serve the example chatbot on 127.0.0.1."""

from __future__ import annotations

import argparse

import uvicorn

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, default=8080)
args = parser.parse_args()
uvicorn.run("examples.chatbot.app:app", host="127.0.0.1", port=args.port)
