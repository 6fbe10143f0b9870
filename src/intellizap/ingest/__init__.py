"""Webhook ingest: Evolution's events in, group messages stored once."""
