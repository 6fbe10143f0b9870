"""Voice-note transcription: Whisper, a reply quoting the audio, the transcript as message text."""
