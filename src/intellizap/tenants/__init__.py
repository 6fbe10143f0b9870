"""Tenants (``usuarios``) and their groups: who a webhook belongs to and what they allow."""
