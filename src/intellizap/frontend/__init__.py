"""The HTTP API the frontend calls with its users' Supabase sessions (on-demand summaries,
usage, group refresh). Everything else the frontend reads and writes in the database directly."""
