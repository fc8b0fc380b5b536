"""Type stubs for the private native module. Import kafka_llm instead."""

__version__: str

def library_versions() -> str: ...
