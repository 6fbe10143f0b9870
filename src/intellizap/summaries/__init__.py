"""Daily WhatsApp group summaries: transcript rendering, prompts, chunking and scheduling."""
