"""IntelliZap backend: WhatsApp group ingest, voice-note transcription and daily summaries."""

__version__ = "0.1.0"
