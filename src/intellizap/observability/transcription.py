"""Metrics of voice-note transcription: ``TRANSCRIBED_SECONDS.labels(key_owner=…).inc(seconds)``
once per transcribed voice note (the seconds also recorded in ``uso_tokens``)."""

from __future__ import annotations

from prometheus_client import Counter

TRANSCRIBED_SECONDS = Counter(
    "intellizap_transcribed_audio_seconds_total",
    "Seconds of voice notes transcribed, by whose key paid (propria, plataforma)",
    ["key_owner"],
)
