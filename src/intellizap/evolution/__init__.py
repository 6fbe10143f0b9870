"""The WhatsApp gateway: webhook payloads, the REST client and its errors."""
