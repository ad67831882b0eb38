"""llmviz: a desktop application for looking inside transformer language models."""

__version__ = "0.1.0"
APP_NAME = "llmviz"
